use super::*;

#[test]
fn only_clients_known_to_hide_a_403_get_the_err_line() {
    for ua in [
        "git/2.0 (libgit2 1.5.0)",
        "JGit/4.11.9.201909030838-r",
        "git/dulwich/0.21.2",
        "go-git/5.x",
    ] {
        assert!(prints_only_err_line(Some(ua)), "{ua}");
    }
    for ua in ["git/2.47.3", "git/2.47.1.windows.1", "curl/8.14.1"] {
        assert!(!prints_only_err_line(Some(ua)), "{ua}");
    }
    assert!(!prints_only_err_line(None));
}
