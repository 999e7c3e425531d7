// Words every page shows the same way: the connection state and distances. A page's own
// table (defined after this one) may say any of them differently.
export const COMMON_WORDS = {
  zh: {
    conn_connected: '已连接',
    conn_connecting: '正在连接…',
    conn_retry: '（第 {n} 次）',
    distance_m: '{n} 米',
    distance_km: '{n} 公里',
  },
  en: {
    conn_connected: 'Connected',
    conn_connecting: 'Connecting…',
    conn_retry: ' (attempt {n})',
    distance_m: '{n} m',
    distance_km: '{n} km',
  },
};
