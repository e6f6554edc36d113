// Writes Redis protocol for N `SET sess:<id> <value> EX <ttl>` commands on stdout, for
// `redis-cli --pipe`: sessions of OTHER users, shaped like what connect-redis 7 stores for the
// express-seed peer (cookie block + userId/email/role), ids like express-session's (24 random
// bytes, base64url). usage: node scripts/bench/gen-sessions.mjs N [prefix]
import crypto from 'node:crypto';

const n = Number(process.argv[2] || 200000);
const prefix = process.argv[3] || 'sess:';
const week = 7 * 24 * 3600;
const now = Date.now();

function resp(args) {
  let s = `*${args.length}\r\n`;
  for (const a of args) s += `$${Buffer.byteLength(a)}\r\n${a}\r\n`;
  return s;
}

let buf = [];
let size = 0;
for (let i = 0; i < n; i++) {
  const id = crypto.randomBytes(24).toString('base64url');
  const ttl = 60 + Math.floor(Math.random() * (week - 60)); // time left, up to 7 days
  const value = JSON.stringify({
    cookie: {
      originalMaxAge: week * 1000,
      expires: new Date(now + ttl * 1000).toISOString(),
      secure: false,
      httpOnly: true,
      path: '/',
      sameSite: 'strict',
    },
    userId: crypto.randomUUID(),
    email: `user${i}@example.com`,
    role: i % 50 === 0 ? 'admin' : 'user',
  });
  const cmd = resp(['SET', prefix + id, value, 'EX', String(ttl)]);
  buf.push(cmd);
  size += cmd.length;
  if (size > 1 << 20) {
    process.stdout.write(buf.join(''));
    buf = [];
    size = 0;
  }
}
process.stdout.write(buf.join(''));
