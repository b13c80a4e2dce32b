//! The EDN codec: parsing never panics; whatever parses prints, parses back to the same value
//! and prints the same bytes again (canonical), pretty or compact.
#![no_main]

use libfuzzer_sys::fuzz_target;
use valfs::codec::{Format, edn, json, parse_file_text};

fuzz_target!(|data: &[u8]| {
    let _ = parse_file_text(Format::Edn, data);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(value) = edn::parse(text) else {
        return;
    };
    let printed = edn::print(&value);
    let again = edn::parse(&printed).expect("printed EDN parses");
    assert_eq!(
        again, value,
        "print then parse changed the value: {printed}"
    );
    assert_eq!(edn::print(&again), printed, "printing is not canonical");
    let pretty = edn::print_pretty(&value);
    assert_eq!(
        edn::parse(&pretty).expect("pretty parses"),
        value,
        "{pretty}"
    );
    // JSON either holds the value exactly or refuses it with an error.
    if let Ok(j) = json::print(&value) {
        assert_eq!(json::parse(&j).expect("printed JSON parses"), value, "{j}");
    }
});
