use super::client_addr;
use axum::http::HeaderMap;

fn headers(forwarded: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("x-forwarded-for", forwarded.parse().unwrap());
    headers
}

#[test]
fn forwarded_addresses_count_only_from_trusted_proxies() {
    let proxy = "127.0.0.1".parse().unwrap();
    let client = "203.0.113.7".parse().unwrap();
    // Attack: a client sends its own X-Forwarded-For to pose as another
    // address (to escape throttling, or to match an ip-bound session).
    assert_eq!(
        client_addr(client, &headers("198.51.100.1"), &[proxy]),
        client
    );
    assert_eq!(
        client_addr(proxy, &headers("203.0.113.7"), &[]),
        proxy,
        "no proxy trusted by default"
    );
    assert_eq!(
        client_addr(proxy, &headers("203.0.113.7"), &[proxy]),
        client
    );
    // Through the proxy, the client's own left-hand entries are ignored.
    assert_eq!(
        client_addr(proxy, &headers("198.51.100.1, 203.0.113.7"), &[proxy]),
        client
    );
    assert_eq!(client_addr(proxy, &headers("garbage"), &[proxy]), proxy);
    // An entry that is not a bare address stops the walk there.
    let cut = headers("198.51.100.1, 203.0.113.7:5678");
    assert_eq!(client_addr(proxy, &cut, &[proxy]), proxy);
    let mapped = "::ffff:127.0.0.1".parse().unwrap();
    assert_eq!(
        client_addr(mapped, &headers("203.0.113.7"), &[proxy]),
        client
    );
    assert_eq!(client_addr(proxy, &HeaderMap::new(), &[proxy]), proxy);
}
