// A real OpenID Connect provider for Palaver's single sign-on tests: oidc-provider with
// its development login and consent pages (any password logs in as the name typed).
//
// Usage: node provider.mjs CLIENT_ID CLIENT_SECRET REDIRECT_URI...
// Listens on a free loopback port and prints `listening <port>` once it answers; the
// issuer is http://127.0.0.1:<port>. Stops when stdin closes (the test ended).
import http from 'node:http';
import Provider from 'oidc-provider';

const [clientId, clientSecret, ...redirectUris] = process.argv.slice(2);
if (!clientId || !clientSecret || redirectUris.length === 0) {
  console.error('usage: node provider.mjs CLIENT_ID CLIENT_SECRET REDIRECT_URI...');
  process.exit(2);
}

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const provider = new Provider(`http://127.0.0.1:${port}`, {
    clients: [{
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: redirectUris,
      grant_types: ['authorization_code'],
      response_types: ['code'],
    }],
    // Palaver always sends a PKCE challenge: hold it to that.
    pkce: { required: () => true },
    claims: { openid: ['sub'], profile: ['preferred_username', 'name'] },
    // The account is whoever logs in: the subject and `preferred_username` are the name
    // typed, `name` its capitalised form.
    findAccount: (ctx, sub) => ({
      accountId: sub,
      claims: () => ({ sub, preferred_username: sub, name: sub.replace(/^./, (c) => c.toUpperCase()) }),
    }),
    cookies: { keys: ['palaver-test-provider-cookie-key'] },
    features: { devInteractions: { enabled: true } },
  });
  server.on('request', provider.callback());
  console.log(`listening ${port}`);
});

process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
