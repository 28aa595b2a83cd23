//! A minimal blocking TCP server over `Session`, for trying the codecs with real clients
//! (memccapable, memcslap, python clients) without the Node server:
//! `cargo run --release --example serve -- 127.0.0.1:22199`. One thread per connection.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use ferrocache_core::{Config, Store};
use ferrocache_protocol::{Control, ServerInfo, Session};

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:22199".into());
    let store = Arc::new(Store::new(Config::default()).expect("config"));
    // Clients such as memccapable adapt their expectations to the version: speak as 1.6.18.
    let info = Arc::new(ServerInfo::new("1.6.18"));
    info.shutdown_enabled.store(true, Ordering::Relaxed);
    let listener = TcpListener::bind(&addr)?;
    eprintln!("listening on {addr}");
    for conn in listener.incoming() {
        let mut conn = conn?;
        let mut session = Session::new(store.clone(), info.clone());
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            let mut out = Vec::with_capacity(64 * 1024);
            loop {
                let n = match conn.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                out.clear();
                // one feed per socket read (matters after a read of only quiet requests)
                session.start_read();
                let ctl = session.feed(&buf[..n], &mut out);
                if conn.write_all(&out).is_err() {
                    return;
                }
                match ctl {
                    Control::Continue => {}
                    Control::Close => return,
                    Control::Shutdown => std::process::exit(0),
                    // this example has no data directory (snapshot_enabled stays off)
                    Control::Snapshot => return,
                }
            }
        });
    }
    Ok(())
}
