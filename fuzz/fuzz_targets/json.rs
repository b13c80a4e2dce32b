//! The JSON codec: parsing never panics; whatever parses prints, parses back to the same value
//! and prints the same bytes again (canonical), pretty or compact; EDN holds every JSON value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use valfs::codec::{Format, edn, json, parse_file_text};

fuzz_target!(|data: &[u8]| {
    let _ = parse_file_text(Format::Json, data);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(value) = json::parse(text) else {
        return;
    };
    let printed = json::print(&value).expect("a parsed JSON value prints as JSON");
    let again = json::parse(&printed).expect("printed JSON parses");
    assert_eq!(
        again, value,
        "print then parse changed the value: {printed}"
    );
    assert_eq!(
        json::print(&again).expect("prints"),
        printed,
        "printing is not canonical"
    );
    let pretty = json::print_pretty(&value).expect("pretty prints");
    assert_eq!(json::parse(&pretty).expect("pretty parses"), value);
    let as_edn = edn::print(&value);
    assert_eq!(
        edn::parse(&as_edn).expect("EDN of JSON parses"),
        value,
        "{as_edn}"
    );
});
