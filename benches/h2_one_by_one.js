// The idle benchmark's client for HTTP/2 streams opened as a browser's tabs open them: one at a
// time on each connection, each after the previous one's response head, where h2load opens all
// of a connection's streams at once (and h2's queue of frames keeps that peak). Opens CONNS
// connections to URL (TLS, any certificate) with STREAMS event streams each, prints
// `open N` once all are open, then holds them until it is stopped.
//   node benches/h2_one_by_one.js URL CONNS STREAMS
'use strict';
const http2 = require('node:http2');

const [url, conns, streams] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
let open = 0;

function openStream(session) {
  return new Promise((resolve, reject) => {
    const request = session.request({ ':path': '/events', accept: 'text/event-stream' });
    request.on('response', (headers) => {
      if (headers[':status'] !== 200) {
        reject(new Error(`status ${headers[':status']}`));
        return;
      }
      open += 1;
      resolve();
    });
    request.on('data', () => {});
    request.on('error', reject);
  });
}

async function connection() {
  const session = http2.connect(url, { rejectUnauthorized: false });
  session.on('error', (err) => console.error(`connection: ${err.message}`));
  for (let i = 0; i < streams; i += 1) {
    await openStream(session);
  }
}

Promise.all(Array.from({ length: conns }, connection)).then(
  () => {
    console.log(`open ${open}`);
    setInterval(() => {}, 60_000); // hold the streams until stopped
  },
  (err) => {
    console.error(err.message);
    process.exit(1);
  },
);
