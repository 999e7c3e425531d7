// The family page's service worker, served at /family-sw.js so that its scope covers
// /family. It only shows what a push brings and opens the page when the notification is
// tapped; it caches nothing (the page must be live to be true).

self.addEventListener('push', (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch {
    data = { body: event.data ? event.data.text() : '' };
  }
  const title = data.title || '安心 Anxin';
  const options = {
    body: data.body || data.text || '',
    tag: data.tag || (data.incident_id ? `incident-${data.incident_id}` : 'anxin-family'),
    renotify: true,
    requireInteraction: data.priority === 'emergency',
    data: { url: '/family' },
  };
  event.waitUntil(self.registration.showNotification(title, options));
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const url = (event.notification.data && event.notification.data.url) || '/family';
  event.waitUntil(
    self.clients.matchAll({ type: 'window', includeUncontrolled: true }).then((windows) => {
      for (const w of windows) {
        if (new URL(w.url).pathname === '/family' && 'focus' in w) return w.focus();
      }
      return self.clients.openWindow(url);
    }),
  );
});
