//! `stats()` as a JS object keyed by memcached's stat names.

use std::ffi::CStr;
use std::ptr;

use ferrocache_core::{SlabClassStats, Stats};
use napi::{sys, Result};

use super::convert::{check, new_number, new_object, set_prop};

/// Sets numeric properties named exactly as the struct fields (memcached's stat names).
macro_rules! put_numbers {
  ($env:expr, $obj:expr, $src:expr; $($field:ident),* $(,)?) => {
    $(
      set_prop(
        $env,
        $obj,
        CStr::from_bytes_with_nul(concat!(stringify!($field), "\0").as_bytes())
          .expect("a field name has no NUL"),
        new_number($env, $src.$field as f64)?,
      )?;
    )*
  };
}

pub(crate) fn stats_object(env: sys::napi_env, s: &Stats, now: u32) -> Result<sys::napi_value> {
    let obj = new_object(env)?;
    set_prop(env, obj, c"time", new_number(env, now as f64)?)?;
    put_numbers!(env, obj, s;
      curr_items, total_items, bytes, limit_maxbytes, total_malloced, hash_bytes,
      hash_power_level, cmd_get, cmd_set, cmd_flush, cmd_touch, get_hits, get_misses,
      get_expired, get_flushed, delete_hits, delete_misses, incr_hits, incr_misses,
      decr_hits, decr_misses, cas_hits, cas_misses, cas_badval, touch_hits, touch_misses,
      evictions, reclaimed, expired_unfetched, evicted_unfetched, crawler_reclaimed,
      crawler_items_checked, lru_crawler_starts, slab_reassign_count, slab_reassign_rescues,
      slab_reassign_evictions_nomem, slabs_moved, slab_global_page_pool, lru_maintainer_juggles,
    );
    let mut expanding = ptr::null_mut();
    check(env, unsafe {
        sys::napi_get_boolean(env, s.hash_is_expanding, &mut expanding)
    })?;
    set_prop(env, obj, c"hash_is_expanding", expanding)?;
    let mut slabs = ptr::null_mut();
    check(env, unsafe {
        sys::napi_create_array_with_length(env, s.classes.len(), &mut slabs)
    })?;
    for (i, class) in s.classes.iter().enumerate() {
        let c = class_object(env, class)?;
        check(env, unsafe {
            sys::napi_set_element(env, slabs, i as u32, c)
        })?;
    }
    set_prop(env, obj, c"slabs", slabs)?;
    Ok(obj)
}

fn class_object(env: sys::napi_env, c: &SlabClassStats) -> Result<sys::napi_value> {
    let obj = new_object(env)?;
    put_numbers!(env, obj, c;
      id, chunk_size, chunks_per_page, total_pages, total_chunks, used_chunks, free_chunks,
      mem_requested, get_hits, cmd_set, delete_hits, incr_hits, decr_hits, cas_hits,
      cas_badval, touch_hits, number, number_hot, number_warm, number_cold, age_hot,
      age_warm, age, evicted, evicted_nonzero, evicted_time, outofmemory, reclaimed,
      expired_unfetched, evicted_unfetched, crawler_reclaimed, crawler_items_checked,
      moves_to_cold, moves_to_warm, moves_within_lru,
    );
    Ok(obj)
}
