use super::*;

#[test]
fn durations_in_every_unit() {
    assert_eq!(parse_duration("90s"), Ok(90));
    assert_eq!(parse_duration("15m"), Ok(900));
    assert_eq!(parse_duration("1h"), Ok(3600));
    assert_eq!(parse_duration("7d"), Ok(604_800));
    assert_eq!(parse_duration("0s"), Ok(0));
}

#[test]
fn ambiguous_durations_are_errors() {
    for bad in [
        "",
        "90",
        "-5m",
        "1.5h",
        "h",
        "1w",
        "1 h",
        "5mm",
        "99999999999999999999d",
    ] {
        assert!(parse_duration(bad).is_err(), "{bad:?} was accepted");
    }
}

#[test]
fn durations_format_back() {
    assert_eq!(format_duration(3600), "1h");
    assert_eq!(format_duration(900), "15m");
    assert_eq!(format_duration(90), "90s");
    assert_eq!(format_duration(604_800), "7d");
    assert_eq!(format_duration(0), "0s");
}

#[test]
fn utc_dates_match_known_instants() {
    assert_eq!(format_utc(0), "1970-01-01 00:00:00 UTC");
    // RFC 6238 Appendix B uses these instants and prints their dates.
    assert_eq!(format_utc(1_111_111_109), "2005-03-18 01:58:29 UTC");
    assert_eq!(format_utc(2_000_000_000), "2033-05-18 03:33:20 UTC");
    assert_eq!(format_utc(20_000_000_000), "2603-10-11 11:33:20 UTC");
    assert_eq!(format_utc(951_782_400), "2000-02-29 00:00:00 UTC");
}

#[test]
fn rfc3339_is_one_word() {
    assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(format_rfc3339(1_795_000_330), "2026-11-18T11:12:10Z");
}

#[test]
fn times_read_back_what_is_written() {
    for unix in [0, 951_782_400, 1_764_547_200, 1_796_291_963, 4_107_542_399] {
        assert_eq!(parse_rfc3339(&format_rfc3339(unix)), Ok(unix), "{unix}");
    }
    assert_eq!(parse_rfc3339("2026-12-01"), Ok(1_796_083_200));
    assert_eq!(parse_rfc3339("2000-02-29T00:00:00Z"), Ok(951_782_400));
    for bad in [
        "",
        "2026-13-01",
        "2026-02-29",
        "2026-12-01T08:00:00",
        "2026-12-01 08:00:00Z",
        "2026-1-01",
        "2026-12-01T24:00:00Z",
        "yesterday",
        "+2026-12-01",
    ] {
        assert!(parse_rfc3339(bad).is_err(), "{bad}");
    }
}
