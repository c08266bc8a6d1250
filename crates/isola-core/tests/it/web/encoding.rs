//! TextDecoder beyond UTF-8: every WHATWG label and encoding (single-byte,
//! CJK multi-byte, UTF-16) through encoding_rs, one-shot and streaming, and
//! the spec's errors.

use serde_json::json;

use super::{run, throws, PATCH_EVERYTHING};

#[test]
fn legacy_encodings_decode_known_answers() {
    let v = run(r#"
        const d = (label, bytes, opts) => new TextDecoder(label, opts).decode(new Uint8Array(bytes));
        return [
            d("windows-1252", [0x80, 0x63, 0x61, 0x66, 0xe9]),   // "€café"
            d("latin1", [0x80]),                                // latin1 is windows-1252
            d("iso-8859-2", [0xa1, 0xb1]),                      // "Ąą"
            d("koi8-r", [0xf0, 0xd2, 0xc9]),                    // "При"
            d("shift_jis", [0x82, 0xa0, 0x93, 0xfa]),           // "あ日"
            d("euc-kr", [0xc7, 0xd1]),                          // "한"
            d("gbk", [0xd6, 0xd0]),                             // "中"
            d("big5", [0xa4, 0xa4]),                            // "中"
            d("utf-16le", [0xff, 0xfe, 0x41, 0x00, 0x3d, 0xd8, 0x00, 0xde]), // BOM dropped, "A😀"
            d("utf-16be", [0x00, 0x41]),
            new TextDecoder("  Latin1\n").encoding, new TextDecoder("sjis").encoding, new TextDecoder("unicode-1-1-utf-8").encoding,
        ];
    "#);
    assert_eq!(
        v,
        json!([
            "€café",
            "€",
            "Ąą",
            "При",
            "あ日",
            "한",
            "中",
            "中",
            "A😀",
            "A",
            "windows-1252",
            "shift_jis",
            "utf-8"
        ])
    );
}

#[test]
fn streaming_keeps_a_split_character_and_fatal_mode_throws() {
    let v = run(&format!(
        r#"const sj = new TextDecoder("shift_jis");
        const a = sj.decode(new Uint8Array([0x82]), {{ stream: true }});
        const b = sj.decode(new Uint8Array([0xa0, 0x41]), {{ stream: true }});
        const end = sj.decode(new Uint8Array([0x82]));
        const again = sj.decode(new Uint8Array([0x41]));
        const u16 = new TextDecoder("utf-16le");
        const parts = [u16.decode(new Uint8Array([0x41]), {{ stream: true }}), u16.decode(new Uint8Array([0x00]))];
        return [a, b, end, again, parts, {}, {}, {}];"#,
        throws("new TextDecoder('euc-kr', { fatal: true }).decode(new Uint8Array([0xff, 0xff]))"),
        throws("new TextDecoder('replacement')"),
        throws("new TextDecoder('\\u000butf-8')"),
    ));
    assert_eq!(v[0], "");
    assert_eq!(v[1], "あA");
    assert_eq!(v[2], "\u{fffd}", "{v}");
    assert_eq!(v[3], "A");
    assert_eq!(v[4], json!(["", "A"]));
    assert_eq!(v[5][0], "TypeError");
    assert!(v[5][1].as_str().unwrap().contains("EUC-KR"), "{v}");
    assert_eq!(v[6][0], "RangeError");
    assert_eq!(v[7][0], "RangeError");
}

#[test]
fn legacy_decoding_works_after_the_tenant_patched_every_builtin() {
    let v = run(&format!(
        "const bytes = new Uint8Array([0xcf, 0xf0, 0xe8]);
         {PATCH_EVERYTHING}
         const d = new TextDecoder('windows-1251');
         return [d.decode(bytes), d.decode(bytes, {{ stream: true }}) + d.decode()];"
    ));
    assert_eq!(v, json!(["При", "При"]));
}

#[test]
fn text_decoder_stream_decodes_legacy_encodings_across_chunks() {
    let v = run(r#"
        const ds = new TextDecoderStream("shift_jis");
        const w = ds.writable.getWriter();
        w.write(new Uint8Array([0x82])); w.write(new Uint8Array([0xa0, 0x93])); w.write(new Uint8Array([0xfa])); w.close();
        let out = "";
        for await (const s of ds.readable) out += s;
        return [ds.encoding, out];
    "#);
    assert_eq!(v, json!(["shift_jis", "あ日"]));
}
