// Tiny dependency-free static file server for the browser test.
//   node static-server.mjs <dir> <port>
// Serves <dir> on 127.0.0.1:<port> (the test opens it as http://localhost:<port>), plus /config.js which
// tells the page where the API is (window.API_URL, from the API_URL environment variable). A path with no
// file and no extension (/reset-password, /verify-email: the pages mails link to) gets index.html, as an SPA
// host does.
// Stops on SIGTERM/SIGINT.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';

const [dirArg, portArg] = process.argv.slice(2);
if (!dirArg || !portArg) {
  console.error('usage: node static-server.mjs <dir> <port>');
  process.exit(2);
}
const root = path.resolve(dirArg);
const port = Number(portArg);
const apiUrl = (process.env.API_URL || 'http://localhost:8080').replace(/\/+$/, '');
const types = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
};

const server = http.createServer((req, res) => {
  const send = (status, type, body) => {
    res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
  if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'text/plain', 'method not allowed\n');
  let pathname;
  try {
    pathname = decodeURIComponent(new URL(req.url, 'http://localhost').pathname);
  } catch {
    return send(400, 'text/plain', 'bad request\n');
  }
  if (pathname === '/config.js') {
    return send(200, types['.js'], `window.API_URL = ${JSON.stringify(apiUrl)};\n`);
  }
  if (pathname.endsWith('/')) pathname += 'index.html';
  const file = path.join(root, pathname);
  if (file !== root && !file.startsWith(root + path.sep)) return send(404, 'text/plain', 'not found\n');
  fs.readFile(file, (err, data) => {
    if (err && !path.extname(file)) {
      return fs.readFile(path.join(root, 'index.html'), (err2, index) => {
        if (err2) return send(404, 'text/plain', 'not found\n');
        send(200, types['.html'], index);
      });
    }
    if (err) return send(404, 'text/plain', 'not found\n');
    send(200, types[path.extname(file)] || 'application/octet-stream', data);
  });
});

server.listen(port, '127.0.0.1', () => {
  console.log(`static server: http://localhost:${port}/ (on 127.0.0.1) serving ${root} (API_URL=${apiUrl})`);
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
