#![no_main]
use libfuzzer_sys::fuzz_target;

// Key bags come from an untrusted volume's Turtle, certificates and private keys from files an
// analyst was handed: unlocking or parsing them must end in a key or an error, never a panic.
fuzz_target!(|data: &[u8]| {
    let _ = aff4::crypto::Certificate::parse(data, "fuzz");
    let _ = aff4::crypto::Keys::private_key(&String::from_utf8_lossy(data), "fuzz");
    let mut g = aff4::rdf::Graph::new();
    if g.parse_turtle(data, "aff4://fuzz", "fuzz").is_err() {
        return;
    }
    // PBKDF2 runs as many iterations as a bag asks (up to the reader's bound): keep runs short.
    let iterations = format!("{}iterations", aff4::vocab::AFF4);
    for s in g.subjects().to_vec() {
        if g.values(&s, &iterations).any(|n| n.as_u64().is_none_or(|i| i > 1000)) {
            g.set(&s, &iterations, aff4::rdf::Node::int(1000));
        }
    }
    let keys = aff4::crypto::Keys { password: Some("password".into()), private_keys: Vec::new() };
    for s in g.subjects_of_type(aff4::vocab::ENCRYPTED_STREAM) {
        let _ = aff4::crypto::unlock(&g, &s, &keys);
        let _ = aff4::crypto::recipients(&g, &s);
    }
});
