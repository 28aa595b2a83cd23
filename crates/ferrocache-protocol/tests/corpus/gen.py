#!/usr/bin/env python3
"""Records the differential corpus: every case is sent in one write to a fresh
memcached 1.6.18 (127.0.0.1, a free port) and its reply bytes and whether it closed the
connection are written to corpus.txt, which tests/corpus.rs replays through Session.

Run: python3 gen.py [path-to-memcached]   (about a minute; needs no network)"""
import socket, struct, subprocess, sys, time

MEMCACHED = sys.argv[1] if len(sys.argv) > 1 else '/usr/bin/memcached'
K251 = 'k' * 251
K250 = 'k' * 250

# name, request bytes, options: "nosplit": the result depends on how the bytes are chunked.
CASES = []
def case(name, data, *opts):
    if isinstance(data, str):
        data = data.encode('latin1')
    CASES.append((name, data, opts))

# --- storage commands -------------------------------------------------------------
case('set_get', 'set a 0 0 1\r\nx\r\nget a\r\n')
case('set_lf_only', 'set a 0 0 1\nx\nget a\n')
case('set_flags_cas', 'set a 5 0 3\r\nabc\r\ngets a\r\n')
case('set_value_too_long', 'set a 0 0 1\r\nx\r\nset a 0 0 1\r\nxy\r\nget a\r\n')
case('set_value_much_too_long', 'set a 0 0 1\r\nxyz\r\nget a\r\n')
case('set_value_short_then_more', 'set a 0 0 5\r\nab\r\n\r\nget a\r\n')
case('set_neg_flags', 'set a -1 0 1\r\nx\r\n')
case('set_max_flags', 'set a 4294967295 0 1\r\nx\r\ngets a\r\n')
case('set_flags_overflow_wraps', 'set a 4294967296 0 1\r\nx\r\ngets a\r\n')
case('set_flags_u64_max', 'set a 18446744073709551615 0 1\r\nx\r\ngets a\r\n')
case('set_flags_too_big', 'set a 18446744073709551616 0 1\r\nx\r\n')
case('set_flags_hex', 'set a 0x1 0 1\r\nx\r\n')
case('set_flags_plus', 'set a +7 0 1\r\nx\r\nget a\r\n')
case('set_neg_len', 'set a 0 0 -1\r\nx\r\n')
case('set_len_intmax', 'set a 0 0 2147483647\r\nx\r\n')
case('set_len_intmax_minus2', 'set a 0 0 2147483645\r\n')
case('set_len_wraps_to_1', 'set a 0 0 4294967297\r\nx\r\nget a\r\n')
case('set_len_nonnum', 'set a 0 0 x\r\nx\r\n')
case('set_len_leading_zero', 'set a 0 0 01\r\nx\r\nget a\r\n')
case('set_exptime_nonnum', 'set a 0 abc 1\r\nx\r\n')
case('set_exptime_negative', 'set a 0 -5 1\r\nx\r\nget a\r\n')
case('set_exptime_int_overflow', 'set a 0 2147483648 1\r\nx\r\nget a\r\n')
case('set_too_few_tokens', 'set a 0 0\r\n')
case('set_too_many_tokens', 'set a 0 0 1 noreply extra\r\nx\r\n')
case('set_garbage_noreply_slot', 'set a 0 0 1 garbage\r\nx\r\nget a\r\n')
case('set_noreply', 'set a 0 0 1 noreply\r\nx\r\nget a\r\n')
case('set_noreply_bad_chunk', 'set a 0 0 1 noreply\r\nxy\r\nget a\r\n')
case('set_extra_spaces', 'set  a  0  0  1\r\nx\r\nget a\r\n')
case('set_key_250', 'set %s 0 0 1\r\nx\r\nget %s\r\n' % (K250, K250))
case('set_key_251', 'set %s 0 0 1\r\nx\r\n' % K251)
case('set_key_251_noreply', 'set %s 0 0 1 noreply\r\nx\r\n' % K251)
case('set_empty_value', 'set a 0 0 0\r\n\r\nget a\r\n')
case('set_binary_value', b'set a 0 0 4\r\n\x00\r\n\xff\r\nget a\r\n')
case('set_too_large', 'set a 0 0 2000000\r\n' + 'x' * 2000000 + '\r\nget a\r\n')
case('set_too_large_removes_old', 'set a 0 0 1\r\nx\r\nset a 0 0 1048577\r\n' + 'y' * 1048577 + '\r\nget a\r\n')
case('set_largest_fitting', 'set a 0 0 1048516\r\n' + 'y' * 1048516 + '\r\nmg a s\r\n')
case('set_one_over_largest', 'set a 0 0 1048517\r\n' + 'y' * 1048517 + '\r\nmg a s\r\n')
case('set_largest_fitting_flags', 'set a 1 0 1048512\r\n' + 'y' * 1048512 + '\r\nset a 1 0 1048513\r\n' + 'y' * 1048513 + '\r\nmg a s\r\n')
case('add', 'add a 0 0 1\r\nx\r\nadd a 0 0 1\r\ny\r\nget a\r\n')
case('add_noreply', 'add a 0 0 1 noreply\r\nx\r\nadd a 0 0 1 noreply\r\ny\r\nget a\r\n')
case('replace', 'replace a 0 0 1\r\nx\r\nset a 0 0 1\r\nx\r\nreplace a 3 0 1\r\ny\r\ngets a\r\n')
case('append_prepend', 'append a 0 0 1\r\nx\r\nset a 7 0 1\r\nx\r\nappend a 0 0 2\r\nyz\r\nprepend a 0 0 1\r\nw\r\ngets a\r\n')
case('cas', 'set a 0 0 1\r\nx\r\ngets a\r\ncas a 0 0 1 1\r\ny\r\ncas a 0 0 1 1\r\nz\r\ncas b 0 0 1 1\r\nz\r\ngets a\r\n')
case('cas_zero', 'set a 0 0 1\r\nx\r\ncas a 0 0 1 0\r\ny\r\n')
case('cas_bad', 'cas a 0 0 1\r\n')
case('cas_bad_value', 'cas a 0 0 1 x\r\nx\r\n')
case('cas_noreply', 'set a 0 0 1\r\nx\r\ncas a 0 0 1 9 noreply\r\ny\r\ncas a 0 0 1 1 noreply\r\nz\r\nget a\r\n')
# --- retrieval --------------------------------------------------------------------
case('get_miss', 'get a\r\n')
case('get_multi', 'set a 0 0 1\r\n1\r\nset c 0 0 1\r\n3\r\nget a b c a\r\n')
case('get_no_key', 'get\r\n')
case('get_space_only', 'get \r\n')
case('gets_no_key', 'gets\r\n')
# memcached culls every reply not yet written out (since its last write-out point: a get,
# mn, every 21 requests): the STORED of an earlier set in the same read is lost too.
case('get_key_251', 'set a 0 0 1\r\nx\r\nget a %s a\r\n' % K251)
case('get_key_251_culls_unsent', 'set a 0 0 1\r\nx\r\nmn\r\nset b 0 0 1\r\ny\r\ndelete zz\r\ngets b %s\r\nget a\r\n' % K251)
case('gat_key_251_after_get', 'set a 0 0 1\r\nx\r\nget a\r\ntouch a 0\r\ngat 0 a %s\r\nget a\r\n' % K251)
case('get_many_keys', 'set k5 0 0 1\r\n5\r\nset k40 0 0 2\r\n40\r\nget ' + ' '.join('k%d' % i for i in range(60)) + '\r\n')
case('get_long_line', 'get ' + ' '.join('key%04d' % i for i in range(600)) + '\r\n', 'nosplit')
case('gat', 'set a 0 0 1\r\nx\r\ngat 100 a b\r\ngats 0 a\r\n')
case('gat_no_key', 'gat 10\r\n')
case('gat_bad_exptime', 'gat x a\r\n')
case('gat_negative_expires', 'set a 0 0 1\r\nx\r\ngat -1 a\r\nget a\r\n')
case('bget', 'set a 0 0 1\r\nx\r\nbget a\r\n')
case('get_nul_in_line', b'set a 0 0 1\r\nx\r\nget a\x00 b\r\n')
# --- delete / arith / touch -------------------------------------------------------
case('delete', 'set a 0 0 1\r\nx\r\ndelete a\r\ndelete a\r\n')
case('delete_zero', 'delete a 0\r\n')
case('delete_five', 'delete a 5\r\n')
case('delete_noreply', 'set a 0 0 1\r\nx\r\ndelete a noreply\r\ndelete a 0 noreply\r\nmn\r\n')
case('delete_bad_third', 'delete a 0 x\r\n')
case('delete_too_many', 'delete a 0 noreply x\r\n')
case('delete_key_251', 'delete %s\r\n' % K251)
case('delete_no_key', 'delete\r\n')
case('incr_decr', 'set n 0 0 2\r\n10\r\nincr n 5\r\ndecr n 100\r\nincr n 18446744073709551615\r\nget n\r\n')
case('incr_wrap', 'set n 0 0 20\r\n18446744073709551615\r\nincr n 1\r\nget n\r\n')
case('decr_shrinks', 'set n 0 0 3\r\n100\r\ndecr n 1\r\nget n\r\n')
case('incr_grows', 'set n 0 0 2\r\n99\r\nincr n 1\r\nget n\r\n')
case('incr_bad_delta', 'set n 0 0 1\r\n1\r\nincr n -1\r\nincr n 1x\r\nincr n 18446744073709551616\r\nincr n abc\r\n')
case('incr_non_numeric', 'set n 0 0 2\r\nab\r\nincr n 1\r\nset m 0 0 3\r\n12a\r\nincr m 1\r\n')
case('incr_leading_space', 'set n 0 0 3\r\n 12\r\nincr n 1\r\n')
case('incr_empty', 'set n 0 0 0\r\n\r\nincr n 1\r\n')
case('incr_miss', 'incr n 1\r\ndecr n 1\r\n')
case('incr_noreply', 'set n 0 0 1\r\n1\r\nincr n 5 noreply\r\nget n\r\n')
case('incr_tokens', 'incr n\r\nincr n 1 2 3\r\n')
case('incr_key_251', 'incr %s 1\r\n' % K251)
case('touch', 'set a 0 0 1\r\nx\r\ntouch a 10\r\ntouch b 10\r\n')
case('touch_bad', 'touch a\r\ntouch a x\r\n')
case('touch_noreply', 'set a 0 0 1\r\nx\r\ntouch a 10 noreply\r\nmn\r\n')
case('touch_expire', 'set a 0 0 1\r\nx\r\ntouch a -1\r\nget a\r\n')
# --- misc -------------------------------------------------------------------------
case('flush_all', 'set a 0 0 1\r\nx\r\nflush_all\r\nget a\r\n')
case('flush_all_variants', 'flush_all 0\r\nflush_all -1\r\nflush_all noreply\r\nflush_all 0 noreply\r\nflush_all x\r\nflush_all 1 2 3\r\n')
case('flush_all_delay', 'set a 0 0 1\r\nx\r\nflush_all 100\r\nget a\r\n')
case('version', 'version\r\nversion extra\r\n')
case('verbosity', 'verbosity\r\nverbosity 1\r\nverbosity 1 noreply\r\nverbosity x\r\nverbosity 1 2 3\r\nverbosity noreply\r\n')
case('unknown', 'bogus\r\nfoo bar\r\n')
case('one_char', 'x\r\n')
case('empty_line', '\r\n')
case('bare_lf', '\n')
case('cr_only_line', '\r\r\n')
case('shutdown_disabled', 'shutdown\r\nshutdown graceful\r\n')
case('quit', 'set a 0 0 1\r\nx\r\nquit\r\nget a\r\n')
case('quit_extra', 'quit now\r\nget a\r\n')
case('stats_unknown', 'stats bogus\r\nstats extstore\r\n')
case('stats_reset', 'stats reset\r\n')
case('stats_detail', 'stats detail\r\nstats detail on\r\nstats detail dump\r\nstats detail off\r\n')
case('stats_sizes', 'stats sizes\r\n')
case('stats_items_empty', 'stats items\r\n')
case('tab_is_not_space', 'get\ta\r\n')
case('line_too_long', 'set ' + 'k' * 3000, 'nosplit')
case('line_too_long_get_ok', 'get ' + 'k' * 3000 + '\r\n', 'nosplit')
case('long_key_line_with_newline', 'set ' + 'k' * 3000 + ' 0 0 1\r\nx\r\n', 'nosplit')
case('set_exptime_absolute_past', 'set a 0 1000000000 1\r\nx\r\nget a\r\n')
case('set_exptime_30_days', 'set a 0 2592000 1\r\nx\r\nget a\r\n')
case('cas_on_missing_after_delete', 'set a 0 0 1\r\nx\r\ngets a\r\ndelete a\r\ncas a 0 0 1 1\r\ny\r\n')
case('append_noreply', 'set a 0 0 1\r\nx\r\nappend a 0 0 1 noreply\r\ny\r\nprepend a 0 0 1 noreply\r\nw\r\nget a\r\n')
case('replace_noreply_miss', 'replace a 0 0 1 noreply\r\nx\r\nget a\r\n')
case('incr_on_appended', 'set a 0 0 1\r\n1\r\nappend a 0 0 1\r\n2\r\nincr a 1\r\n')
case('incr_long_number', 'set a 0 0 25\r\n0000000000000000000000001\r\nincr a 1\r\nget a\r\n')
case('gats_many', 'set a 0 0 1\r\n1\r\nset b 0 0 1\r\n2\r\ngats 100 a b c\r\n')
case('get_24_tokens_boundary', 'set k22 0 0 1\r\nx\r\nset k23 0 0 1\r\ny\r\nget ' + ' '.join('k%d' % i for i in range(1, 25)) + '\r\n')
case('set_24_tokens', 'set ' + ' '.join('t%d' % i for i in range(30)) + '\r\n')
case('noreply_on_get_is_a_key', 'get a noreply\r\n')
case('stats_cachedump', 'stats cachedump 1 0\r\nstats cachedump 1 1\r\nstats cachedump 2 0\r\nstats cachedump 64 0\r\nstats cachedump x 0\r\nstats cachedump 1\r\n')
case('http_request', 'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
case('http_after_command', 'version\r\nset a 0 0 1\r\nx\r\nPUT /x HTTP/1.0\r\nversion\r\n', 'nosplit')
case('http_token_shapes', 'get / HTTP/1.1\r\nfoo HTTP/ x\r\nfoo x HTTPS/1\r\nfoo x http/1.1\r\nset a 0 0 1 HTTP/1.1\r\nx\r\nverbosity HTTP/1.1\r\nsx a HTTP/1.1\r\nmx HTTP/1.1\r\ngx HTTP/1.1\r\nmxx HTTP/1.1\r\n', 'nosplit')
case('http_bare_version_token', 'HTTP/1.1\r\n')
case('hangup_keeps_what_memcached_flushed', 'version\r\nget a\r\nversion\r\nmn\r\nversion\r\nBAD HTTP/1.1\r\n', 'nosplit')
case('hangup_after_20_requests', 'version\r\n' * 25 + 'BAD HTTP/1.1\r\n', 'nosplit')
case('line_too_long_after_commands', 'version\r\nset ' + 'k' * 3000, 'nosplit')
case('pipelined_mix', 'set a 0 0 1\r\n1\r\nget a\r\nincr a 1\r\ndelete a\r\nget a\r\nmn\r\n')
# --- meta -------------------------------------------------------------------------
case('mn', 'mn\r\nmn extra\r\n')
case('meta_unknown', 'mx a\r\nm\r\nmz\r\n')
case('mg_miss_hit', 'mg a\r\nset a 3 0 1\r\nx\r\nmg a\r\nmg a v\r\nmg a s f v\r\n')
case('mg_no_key', 'mg\r\n')
case('mg_flags', 'set a 9 0 2\r\nhi\r\nmg a s v f t c k O123 q\r\n')
case('mg_miss_quiet', 'mg b s v q\r\nmg b k O1 q\r\nmn\r\n')
case('mg_miss_echo', 'mg zz k O1 v s\r\n')
case('mg_invalid_flag', 'mg a zz\r\nmg a E5\r\n')
case('mg_dup_flag', 'mg a v v\r\n')
case('mg_high_byte_flag', b'mg a \xc3x\r\n')
case('mg_base64', 'ms YWJj 2 b k c\r\nhi\r\nmg YWJj b k v\r\nmg abc v\r\n')
case('mg_base64_bad', 'mg zz b k\r\nmg a b\r\n')
case('mg_base64_miss', 'mg enp6 b k O1\r\n')
case('mg_opaque_limit', 'mg a O1234567890123456789012345678901\r\nmg a O12345678901234567890123456789012\r\n')
case('mg_key_251', 'mg %s v\r\n' % K251)
case('mg_too_many_flags', 'mg YQ== v s f t c k O1 q h l u N1 R1 T1 I P L b\r\n')
case('mg_bad_numeric_flags', 'mg a Dx\r\nmg a Jx\r\nmg a C-1\r\nmg a Fx\r\nmg a D1 J2 C3 F4 M5\r\n')
case('ms_bad_numeric_flags', 'ms a 1 Dx\r\nx\r\nms a 1 Jx\r\nx\r\nmn\r\n')
case('mg_bad_tokens', 'mg a Nx\r\nmg a Tx\r\nmg a Rx\r\n')
case('mg_vivify', 'mg a N30 s c v\r\nmg a s v\r\n')
case('mg_ttl', 'set a 0 100 1\r\nx\r\nmg a t\r\nmg a T0 t\r\n')
case('mg_touch_ttl', 'set a 0 0 1\r\nx\r\nmg a T100\r\nmg a t\r\n')
case('mg_hit_flags', 'set a 0 0 1\r\nx\r\nmg a h l\r\nmg a h\r\n')
case('ms_basic', 'ms a 2\r\nhi\r\nmg a v\r\n')
case('ms_no_len', 'ms a\r\n')
case('ms_flags', 'ms a 2 T0 F5 c k O9\r\nhi\r\nmg a f v\r\n')
case('ms_bad_len', 'ms n -1\r\n5\r\nms n x\r\n5\r\nms n S1\r\n5\r\n')
case('ms_invalid_flag', 'ms n 1 S1\r\n5\r\nms n 1 E5\r\n5\r\n')
case('ms_bad_flags_value', 'ms n 1 F-1\r\n5\r\nms n 1 Fx\r\n5\r\nms n 1 Tx\r\n5\r\n')
case('ms_modes', 'ms n 1 MA\r\n5\r\nms n 1 ME\r\n5\r\nms n 1 ME\r\n6\r\nms n 1 MA\r\n7\r\nms n 1 MP\r\n4\r\nms n 1 MR\r\n8\r\nms m 1 MR\r\n8\r\nmg n v\r\n')
case('ms_bad_mode', 'ms n 1 MX\r\n5\r\nms n 1 MSS\r\n5\r\n')
case('ms_quiet', 'ms n 1 q\r\n5\r\nms n 1 ME q\r\n5\r\nms n 1 C1 q\r\n5\r\nmn\r\n')
case('ms_bad_chunk_quiet', 'ms n 1 q\r\n567\r\nmn\r\n')
case('ms_cas', 'ms n 1 c\r\n5\r\nms n 1 C1 c\r\n6\r\nms n 1 C2\r\n6\r\nms zz 1 C2\r\n6\r\nmg n v c\r\n')
case('ms_invalidate', 'ms n 1\r\n5\r\nms n 1 C99 I\r\n6\r\nmg n v c\r\n')
case('ms_opaque_too_long', 'ms n 1 O123456789012345678901234567890123\r\n5\r\nmn\r\n')
case('ms_expired_ttl', 'ms n 1 T-1 k O5 c\r\n5\r\nmg n v\r\n')
case('ms_too_large', 'ms n 2000000 T0\r\n' + 'x' * 2000000 + '\r\nmn\r\n')
case('ms_key_251', 'ms %s 1\r\n5\r\n' % K251)
case('ms_base64_bad', 'ms a 2 b\r\nhi\r\nmn\r\n')
case('md', 'ms n 1\r\n5\r\nmd n\r\nmd n\r\nmd n q\r\nmn\r\n')
case('md_flags', 'ms n 1\r\n5\r\nmd n C1\r\nmd n k O1 q\r\nmd n k O2\r\n')
case('md_errors', 'md\r\nmd n zz\r\nmd n v v\r\nmd %s\r\n' % K251)
case('md_invalidate', 'ms n 1\r\n5\r\nmd n I T30\r\nmg n v c\r\nmg n v\r\n')
case('ma', 'ma n\r\nma n N0 J10 v\r\nma n v\r\nma n MD D3 v\r\nma n M- v\r\nma n M+ D100 v\r\n')
case('ma_quiet', 'ms n 1\r\n5\r\nma n q\r\nma n q v\r\nma zz q\r\nmn\r\n')
case('ma_errors', 'ma n MX\r\nma n Dabc\r\nma n Jx\r\nma\r\nms s 1\r\nx\r\nma s\r\n')
case('ma_cas', 'ms n 1\r\n5\r\nma n C99\r\nma n c k O9\r\n')
case('ma_wrap', 'ms n 20\r\n18446744073709551615\r\nma n v\r\nma n MD D5 v\r\n')
case('mg_t_before_T', 'set a 0 0 1\r\nx\r\nmg a t T100 v\r\nmg a t\r\nmg b t N50 s\r\nmg b t\r\n')
case('mg_t_after_T', 'set a 0 0 1\r\nx\r\nmg a T100 t\r\nmg c N50 t\r\n')
case('mg_recache', 'set a 0 30 1\r\nx\r\nmg a R60 c\r\nmg a R60 c\r\nmg a R10\r\n')
case('mg_stale_after_md_invalidate', 'set a 0 0 1\r\nx\r\nmd a I\r\nmg a v c\r\nmg a v c\r\nms a 1 C99 I\r\ny\r\nmg a v\r\n')
# only mg takes a stale item's win token: get/gets/gat/gats/touch/me and mg's own t-before-T
# peek serve it and leave the token for the next mg
case('stale_reads_keep_win_token', 'set a 0 0 1\r\nx\r\nmd a I\r\nget a\r\ngets a\r\ngat 100 a\r\ngats 100 a\r\ntouch a 100\r\nmg a v c t\r\nmg a v\r\nget a\r\n')
case('stale_me_keeps_win_token', 'set a 0 0 1\r\nx\r\nmd a I\r\nme a\r\nmg a v\r\n')
case('stale_mg_t_before_T', 'set a 0 0 1\r\nx\r\nmd a I\r\nmg a t T30 v\r\nmg a t v\r\n')
case('md_invalidate_twice', 'set a 0 0 1\r\nx\r\nmd a I\r\nmd a I\r\nmg a v\r\nmd a I\r\nget a\r\nmg a v\r\nmg a v\r\n')
case('md_invalidate_miss', 'md a I\r\nmd a I T30\r\nmg a v\r\nget a\r\n')
case('mg_vivify_on_stale', 'set a 0 0 1\r\nx\r\nmd a I\r\nget a\r\nmg a N30 v\r\nmg a N30 v\r\n')
case('mg_quiet_hit', 'set a 0 0 1\r\nx\r\nmg a v q\r\nmg a q k\r\nmn\r\n')
case('mg_base64_hit_k', 'ms YWJj 1 b\r\nx\r\nmg YWJj b k v s\r\n')
case('mg_u_flag', 'set a 0 0 1\r\nx\r\nmg a u h\r\nmg a h\r\nmg a h\r\n')
case('ma_t_before_T', 'ms n 1\r\n5\r\nma n t T100 v\r\nma n t\r\n')
case('ma_vivify_ttl', 'ma n N100 J3 t v\r\nma n t v\r\n')
case('ms_append_vivify', 'ms n 1 MA N0\r\n5\r\nmg n v\r\n')
case('ms_flags_then_get', 'ms n 3 F7 T0\r\nabc\r\nget n\r\ngets n\r\n')
case('md_base64', 'ms YWJj 1 b\r\nx\r\nmd YWJj b k q\r\nmd YWJj b k\r\n')
case('meta_extra_spaces', 'mg  a   v\r\n')
case('meta_20_tokens', 'ms a 1 T0 F1 c k O1 q I MS b\r\nx\r\nms a 1 T0 F1 c k O1 I MS C1 N1 P L s t f h l u v\r\nx\r\n')
case('me', 'me a\r\nset a 0 0 2\r\nhi\r\nme a\r\nme\r\n')
case('me_base64', 'ms YWJj 2 b\r\nhi\r\nme YWJj b\r\n')

# --- binary -----------------------------------------------------------------------
def pkt(op, key=b'', ext=b'', val=b'', opaque=0xdeadbeef, cas=0, magic=0x80, bodylen=None, keylen=None):
    bl = len(ext) + len(key) + len(val) if bodylen is None else bodylen
    kl = len(key) if keylen is None else keylen
    return struct.pack('>BBHBBHIIQ', magic, op, kl, len(ext), 0, 0, bl, opaque, cas) + ext + key + val

def setx(flags=0, exp=0):
    return struct.pack('>II', flags, exp)

def incx(delta, initial=0, exp=0):
    return struct.pack('>QQI', delta, initial, exp)

B = lambda *ps: b''.join(ps)
case('bin_version', pkt(0x0b))
case('bin_noop', pkt(0x0a))
case('bin_set_get', B(pkt(0x01, b'a', setx(7), b'hello'), pkt(0x00, b'a'), pkt(0x0c, b'a'), pkt(0x00, b'b'), pkt(0x0c, b'b')))
case('bin_quiet_gets', B(pkt(0x11, b'a', setx(), b'v'), pkt(0x09, b'a'), pkt(0x09, b'b'), pkt(0x0d, b'a'), pkt(0x0d, b'b'), pkt(0x0a)))
case('bin_add_replace', B(pkt(0x02, b'a', setx(), b'1'), pkt(0x02, b'a', setx(), b'2'), pkt(0x03, b'b', setx(), b'3'), pkt(0x12, b'a', setx(), b'4'), pkt(0x13, b'b', setx(), b'5'), pkt(0x0a)))
case('bin_cas', B(pkt(0x01, b'a', setx(), b'1'), pkt(0x01, b'a', setx(), b'2', cas=99), pkt(0x01, b'a', setx(), b'3', cas=1), pkt(0x01, b'b', setx(), b'3', cas=5), pkt(0x02, b'a', setx(), b'3', cas=5)))
case('bin_delete', B(pkt(0x01, b'a', setx(), b'1'), pkt(0x04, b'a', cas=9), pkt(0x04, b'a'), pkt(0x04, b'a'), pkt(0x14, b'a'), pkt(0x01, b'a', setx(), b'1'), pkt(0x14, b'a'), pkt(0x0a)))
case('bin_incr', B(pkt(0x05, b'n', incx(1, 10, 0)), pkt(0x05, b'n', incx(5)), pkt(0x06, b'n', incx(100)), pkt(0x05, b'm', incx(1, 0, 0xffffffff)), pkt(0x15, b'n', incx(1)), pkt(0x00, b'n')))
case('bin_incr_non_numeric', B(pkt(0x01, b'a', setx(), b'x'), pkt(0x05, b'a', incx(1)), pkt(0x05, b'a', incx(1), cas=77)))
case('bin_append_prepend', B(pkt(0x0e, b'a', val=b'x'), pkt(0x01, b'a', setx(3), b'b'), pkt(0x0e, b'a', val=b'c'), pkt(0x0f, b'a', val=b'a'), pkt(0x19, b'a', val=b'd'), pkt(0x00, b'a')))
case('bin_touch_gat', B(pkt(0x01, b'a', setx(4), b'v'), pkt(0x1c, b'a', struct.pack('>I', 100)), pkt(0x1d, b'a', struct.pack('>I', 100)), pkt(0x23, b'a', struct.pack('>I', 100)), pkt(0x1c, b'b', struct.pack('>I', 1)), pkt(0x1e, b'b', struct.pack('>I', 1)), pkt(0x24, b'b', struct.pack('>I', 1)), pkt(0x0a)))
case('bin_flush', B(pkt(0x01, b'a', setx(), b'1'), pkt(0x08), pkt(0x00, b'a'), pkt(0x18), pkt(0x08, ext=struct.pack('>I', 0)), pkt(0x0a)))
case('bin_quit', B(pkt(0x0a), pkt(0x07), pkt(0x0a)))
case('bin_quitq', B(pkt(0x17), pkt(0x0a)))
case('bin_unknown', B(pkt(0x50), pkt(0x0a)))
case('bin_unknown_with_body', B(pkt(0x50, b'k', val=b'zzzz'), pkt(0x0a), pkt(0x0a)), 'nosplit')
case('bin_sasl_list', B(pkt(0x20), pkt(0x0a)))
case('bin_sasl_auth', B(pkt(0x21, b'PLAIN', val=b'\x00u\x00p'), pkt(0x0a)))
case('bin_verbosity', B(pkt(0x1b, ext=struct.pack('>I', 1)), pkt(0x0a)))
case('bin_bad_get', B(pkt(0x00, b'a', ext=b'1234'), pkt(0x0a)))
case('bin_get_no_key', B(pkt(0x00), pkt(0x0a)))
case('bin_set_bad_extras', B(pkt(0x01, b'a', b'1234', b'v'), pkt(0x0a)))
case('bin_version_with_body', B(pkt(0x0b, b'a'), pkt(0x0a)))
case('bin_key_too_long', B(pkt(0x00, b'k' * 251), pkt(0x0a)))
case('bin_keylen_over_body', B(pkt(0x00, b'a', bodylen=0), pkt(0x0a)))
case('bin_bad_magic_later', B(pkt(0x0a), b'\x81' + b'\x00' * 23, pkt(0x0a)), 'nosplit')
case('bin_too_large', B(pkt(0x01, b'a', setx(), b'1'), pkt(0x01, b'a', setx(), b'x' * 2000000), pkt(0x00, b'a'), pkt(0x0a)))
case('bin_stat_unknown', B(pkt(0x10, b'bogus'), pkt(0x0a)))
case('bin_stat_reset', B(pkt(0x10, b'reset'),))
case('bin_stat_sizes', B(pkt(0x10, b'sizes'),))
case('bin_getq_hits_and_misses_order', B(pkt(0x01, b'a', setx(1), b'A'), pkt(0x01, b'c', setx(3), b'C'), pkt(0x09, b'a', opaque=1), pkt(0x09, b'b', opaque=2), pkt(0x0d, b'c', opaque=3), pkt(0x0a, opaque=4)))
case('bin_setq_failure_reported', B(pkt(0x12, b'a', setx(), b'1'), pkt(0x12, b'a', setx(), b'2'), pkt(0x13, b'zz', setx(), b'2'), pkt(0x0a)))
case('bin_append_missing_quiet', B(pkt(0x19, b'zz', val=b'x'), pkt(0x0a)))
case('bin_decr_floor', B(pkt(0x01, b'n', setx(), b'5'), pkt(0x06, b'n', incx(9)), pkt(0x00, b'n')))
case('bin_incr_bad_extlen', B(pkt(0x05, b'n', b'12345678'), pkt(0x0a)))
case('bin_delete_quiet_hit', B(pkt(0x01, b'a', setx(), b'v'), pkt(0x14, b'a'), pkt(0x00, b'a')))
case('bin_flush_delay', B(pkt(0x01, b'a', setx(), b'v'), pkt(0x08, ext=struct.pack('>I', 100)), pkt(0x00, b'a')))
case('bin_getk_value', B(pkt(0x01, b'k', setx(9, 0), b'value'), pkt(0x0c, b'k')))
case('bin_hangup_after_error_and_noop', b''.join([pkt(0x0b), pkt(0x00, b'zz'), pkt(0x0b), pkt(0x0a), pkt(0x0b), pkt(0x0c, b'zz'), b'\x00' * 24]), 'nosplit')
case('bin_text_after_binary', B(pkt(0x0a), b'get a\r\n'))
case('text_then_binary_byte', b'version\r\n\x80\x0a' + b'\x00' * 22)

def record(data, port):
    p = subprocess.Popen([MEMCACHED, '-u', 'root', '-l', '127.0.0.1', '-p', str(port), '-U', '0'],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                s = socket.create_connection(('127.0.0.1', port), timeout=1)
                break
            except OSError:
                time.sleep(0.02)
        s.sendall(data)
        s.settimeout(0.3)
        out, closed = b'', False
        while True:
            try:
                d = s.recv(1 << 20)
            except socket.timeout:
                break
            except ConnectionResetError:
                closed = True
                break
            if not d:
                closed = True
                break
            out += d
        s.close()
        return out, closed
    finally:
        p.kill()
        p.wait()

def esc(b):
    out = []
    for c in b:
        ch = chr(c)
        if ch == '\\': out.append('\\\\')
        elif ch == '\r': out.append('\\r')
        elif ch == '\n': out.append('\\n')
        elif 32 <= c < 127: out.append(ch)
        else: out.append('\\x%02x' % c)
    return ''.join(out)

def compress(s):
    # Long runs of one byte (big values) are written as {{byte*count}} to keep the file small.
    import re
    return re.sub(r'(([a-z])\2{63,})', lambda m: '{{%s*%d}}' % (m.group(2), len(m.group(1))), s)

def stat_names(reply):
    names = []
    for line in reply.decode('latin1').split('\r\n'):
        if line.startswith('STAT '):
            names.append(line.split(' ')[1])
    return names

def record_stat_names(port):
    """The names (in order) memcached prints for stats, stats items and stats slabs."""
    general, _ = record(b'stats\r\n', port)
    sub, _ = record(b'set a 0 0 1\r\nx\r\nget a\r\nstats items\r\nstats slabs\r\n', port + 1)
    items_part, slabs_part = sub.split(b'END\r\n')[1:3]
    return ['general ' + ' '.join(stat_names(general)),
            'items ' + ' '.join(stat_names(items_part)),
            'slabs ' + ' '.join(stat_names(slabs_part))]

if __name__ == '__main__':
    here = __file__.rsplit('/', 1)[0] if '/' in __file__ else '.'
    open(here + '/stats_names.txt', 'w').write('\n'.join(record_stat_names(23390)) + '\n')
    lines = ['# Recorded from memcached 1.6.18 by gen.py; do not edit by hand.']
    port = 23400
    for name, data, opts in CASES:
        port += 1
        out, closed = record(data, port)
        lines.append('### %s%s' % (name, (' ' + ' '.join(opts)) if opts else ''))
        lines.append('IN ' + compress(esc(data)))
        lines.append('OUT ' + compress(esc(out)))
        lines.append('CLOSED %d' % closed)
        print(name, len(out), 'closed' if closed else '', file=sys.stderr)
    open(here + '/corpus.txt', 'w').write('\n'.join(lines) + '\n')
