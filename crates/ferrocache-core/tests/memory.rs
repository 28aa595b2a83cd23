//! Bytes per item, the headline figure: 1M items with 16-byte keys and 100-byte values.
//! Counts the slab pages allocated (and, separately, only the chunks carved from them) plus
//! the hash tables.

use ferrocache_core::*;

#[test]
fn one_million_small_items_cost_at_most_memcacheds_198_bytes_each() {
    const N: u64 = 1_000_000;
    let s = Store::new(Config::default().memory_limit(512 << 20).background(false)).unwrap();
    let value = [b'v'; 100];
    for i in 0..N {
        let key = format!("key:{i:012}");
        assert_eq!(key.len(), 16);
        let r = StoreRequest::new(StoreMode::Set, key.as_bytes(), &value);
        s.store(&r).unwrap();
    }
    let st = s.stats();
    assert_eq!(st.curr_items, N);
    assert_eq!(st.evictions, 0);
    let class = st.classes.iter().find(|c| c.number > 0).unwrap();
    assert_eq!(class.chunk_size, 152);
    assert_eq!(st.classes.iter().filter(|c| c.number > 0).count(), 1);
    let pages_bytes = st.total_malloced;
    let touched = class.used_chunks * class.chunk_size as u64;
    let per_item_pages = pages_bytes as f64 / N as f64;
    let per_item_touched = (touched + st.hash_bytes) as f64 / N as f64;
    let per_item = (pages_bytes + st.hash_bytes) as f64 / N as f64;
    eprintln!(
        "1M items: {} pages ({:.1} B/item), hash {} B ({:.2} B/item), total {:.1} B/item ({:.1} B/item counting touched chunks only)",
        pages_bytes >> 20,
        per_item_pages,
        st.hash_bytes,
        st.hash_bytes as f64 / N as f64,
        per_item,
        per_item_touched
    );
    // whole pages (the last one partly carved) and what is touched: 152 B of chunk plus
    // 10.7-13.3 B of 8-byte hash slots (tables grow by a quarter past 3/4 full)
    assert!(per_item <= 170.0, "{per_item:.1} B/item");
    assert!(per_item_touched <= 170.0, "{per_item_touched:.1} B/item");
}
