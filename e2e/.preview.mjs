import { launchChromium, serveAssets } from './support.mjs';
const ORIGIN='http://console.test';
const now=Date.now();
const base=(id,o)=>({id,seq:id,kind:'sos',priority:1,state:'offered',device_id:`xs-d000${id}`,
 elder:{id:`xs-e000${id}`,name:'张秀英',address:'西山区前卫街道 12号',phone:'13800000000',notes:'独居；门禁 1234'},
 location:{at:{lat:25,lon:102.6},accuracy_m:12,source:'device',fix_rejected:null},
 responder:{id:'xs-r001',name:'李伟',phone:null,distance_m:412.5},
 station:{id:'xs-s01',name:'前卫社区居家养老服务中心',phone:'0871-0000000',distance_m:800.1},
 press_count:1,cancel_requested:false,problem:null,pressed_at:now-65000,opened_at:now-65000,updated_at:now,...o});
const incidents=[
 base(1,{}),
 base(2,{elder:{id:'e2',name:'王建国',address:'西山区马街街道 碧鸡路 88号 3栋 2单元 501',phone:null,notes:'糖尿病；子女在外地'},location:{at:{lat:25,lon:102.6},accuracy_m:null,source:'home',fix_rejected:null},responder:{id:'r2',name:'赵敏',phone:null,distance_m:1530},pressed_at:now-20000}),
 base(3,{kind:'fall',elder:{id:'e3',name:'刘桂兰',address:'西山区福海街道 滇池路 301号',phone:'13900000001',notes:'高血压；行动不便'},responder:null,state:'awaiting_dispatcher',station:{id:'s2',name:'福海街道综合养老服务中心',phone:'0871-1111111',distance_m:2300},pressed_at:now-400000}),
 base(4,{kind:'unreadable',priority:2,problem:'unreadable payload: expected JSON',elder:{id:'e4',name:'陈志强',address:'西山区金碧街道 12号',phone:null,notes:''},location:{at:{lat:25,lon:102.6},accuracy_m:null,source:'home',fix_rejected:'null_island'},pressed_at:now-1000000}),
 base(5,{kind:'service',priority:3,press_count:3,responder:null,state:'awaiting_dispatcher',elder:{id:'e5',name:'杨秀珍',address:'西山区永昌街道 5号',phone:null,notes:'独居'},cancel_requested:true,pressed_at:now-30000}),
];
const b=await launchChromium();
for (const lang of ['zh','en']) {
 const p=await b.newPage({viewport:{width:1280,height:800}});
 await serveAssets(p,ORIGIN);
 await p.routeWebSocket(/\/ws/, ws=>{ ws.send(JSON.stringify({type:'snapshot',seq:9,server_time:Date.now(),incidents})); });
 await p.emulateMedia({reducedMotion:'reduce'});
 await p.goto(ORIGIN+'/console');
 await p.locator('[data-incident-id="5"]').waitFor();
 if (lang==='en') await p.click('#lang-toggle');
 await p.waitForTimeout(300);
 await p.screenshot({path:`/tmp/shots/mock-${lang}.png`});
}
await b.close();
