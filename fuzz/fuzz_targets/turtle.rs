#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut g = aff4::rdf::Graph::new();
    if g.parse_turtle(data, "aff4://fuzz", "fuzz").is_ok() {
        let t = g.to_turtle();
        let mut h = aff4::rdf::Graph::new();
        h.parse_turtle(t.as_bytes(), "aff4://fuzz", "re").expect("our own Turtle must parse");
    }
});
