// The front door's two computations nginx cannot do in its configuration alone.
import crypto from 'crypto';

// Token bucket per client, in memory every nginx worker shares: 0 when the call may go, else the seconds
// (whole, at least 1) before a token is back. The client's rate and burst come with the decision.
function rateWait(r) {
    const key = r.variables.door_decided_rate_key;
    if (!key) {
        return '0';
    }
    const rate = parseFloat(r.variables.door_decided_rate) || 20;
    const burst = parseFloat(r.variables.door_decided_burst) || 40;
    const now = Date.now() / 1000;
    const buckets = ngx.shared.door_rates;
    const held = buckets.get(key);
    let tokens = burst;
    if (held) {
        const parts = held.split(':');
        tokens = Math.min(burst, parseFloat(parts[0]) + (now - parseFloat(parts[1])) * rate);
    }
    if (tokens >= 1) {
        buckets.set(key, (tokens - 1) + ':' + now);
        return '0';
    }
    buckets.set(key, tokens + ':' + now);
    return String(Math.max(1, Math.ceil((1 - tokens) / rate)));
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

export default { rateWait, clientCertificate };
