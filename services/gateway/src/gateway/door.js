// What nginx computes in njs: the decision cache, the per-client rate, the client certificate's fingerprint.
import crypto from 'crypto';

// An allowing decision is kept in memory every nginx worker shares for at most HARD_MS; after SOFT_MS the
// first call to see it asks the gateway again while the others still use it, so under load a key is asked
// about once per SOFT_MS and a revocation, logout or disabled account takes effect within that (plus the
// event's way to the gateway); without load within HARD_MS. Refusals are never kept.
const SOFT_MS = 200;
const HARD_MS = 500;
const REFRESH_LOCK_MS = 100;
const PREFIX = 'x-govshare-';

function cacheKey(r) {
    const v = r.variables;
    const parts = [
        v.request_method,
        v.door_path,
        v.http_x_govshare_purpose || '',
        v.arg_purpose || '',
        v.door_client_cert || '',
        v.http_authorization || '',
    ];
    return crypto.createHash('sha256').update(parts.join('\n')).digest('base64');
}

function held(dict, key, now) {
    const entry = dict.get(key);
    if (!entry) {
        return null;
    }
    const a = entry.indexOf('|');
    const b = entry.indexOf('|', a + 1);
    if (now >= Number(entry.slice(0, a))) {
        return null;
    }
    if (now >= Number(entry.slice(a + 1, b)) && dict.add(key + '#refresh', '1', REFRESH_LOCK_MS)) {
        return null; // this call refreshes the entry; the others keep using it meanwhile
    }
    return JSON.parse(entry.slice(b + 1));
}

function decisionHeaders(reply) {
    const out = {};
    const given = reply.headersOut;
    for (const name in given) {
        const lower = name.toLowerCase();
        if (lower.startsWith(PREFIX)) {
            out[lower] = given[name];
        }
    }
    return out;
}

// Token bucket per client in shared memory: 0 when the call may go, else the seconds (whole, at least 1)
// before a token is back. The client's rate and burst come with the decision; an anonymous call's bucket is
// its address's (the decision, kept for everyone calling that route, cannot name it).
function rateWait(r, headers) {
    let key = headers[PREFIX + 'rate-key'];
    if (!key && headers[PREFIX + 'rate-anonymous']) {
        key = 'anonymous:' + r.variables.remote_addr;
    }
    if (!key) {
        return '0';
    }
    const rate = parseFloat(headers[PREFIX + 'rate']) || 20;
    const burst = parseFloat(headers[PREFIX + 'burst']) || 40;
    const now = Date.now() / 1000;
    const buckets = ngx.shared.door_rates;
    const entry = buckets.get(key);
    let tokens = burst;
    if (entry) {
        const parts = entry.split(':');
        tokens = Math.min(burst, parseFloat(parts[0]) + (now - parseFloat(parts[1])) * rate);
    }
    if (tokens >= 1) {
        buckets.set(key, (tokens - 1) + ':' + now);
        return '0';
    }
    buckets.set(key, tokens + ':' + now);
    return String(Math.max(1, Math.ceil((1 - tokens) / rate)));
}

// The auth_request handler: a kept decision, or the gateway's (`/_door/ask`), and the client's rate.
async function decide(r) {
    const dict = ngx.shared.door_decisions;
    const key = cacheKey(r);
    const now = Date.now();
    let headers = held(dict, key, now);
    let status = 200;
    let cache = 'HIT';
    if (headers === null) {
        cache = 'MISS';
        const reply = await r.subrequest('/_door/ask');
        status = reply.status;
        if (status !== 200 && status !== 401 && status !== 403) {
            dict.delete(key);
            r.return(500); // the decision service did not answer: the door's 503 decision_unavailable
            return;
        }
        headers = decisionHeaders(reply);
        if (status === 200) {
            const entry = (now + HARD_MS) + '|' + (now + SOFT_MS) + '|' + JSON.stringify(headers);
            dict.set(key, entry, HARD_MS);
        } else {
            dict.delete(key);
        }
        dict.delete(key + '#refresh');
    }
    for (const name in headers) {
        r.headersOut[name] = headers[name];
    }
    r.headersOut[PREFIX + 'decided'] = String(status);
    r.headersOut[PREFIX + 'cache'] = cache;
    if (status === 200) {
        r.headersOut[PREFIX + 'rate-wait'] = rateWait(r, headers);
    }
    r.return(status);
}

// The SHA-256 fingerprint (hex) of the client certificate this TLS connection verified; '' without one.
function clientCertificate(r) {
    if (r.variables.ssl_client_verify !== 'SUCCESS') {
        return '';
    }
    const pem = r.variables.ssl_client_raw_cert || '';
    const body = pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
    if (!body) {
        return '';
    }
    return crypto.createHash('sha256').update(Buffer.from(body, 'base64')).digest('hex');
}

export default { decide, clientCertificate };
