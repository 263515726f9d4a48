//! `UnbufferedTls` over an in-memory pipe (`tokio::io::duplex`), with rustls's own buffered
//! client at the other end: the test decides how the TLS bytes arrive (a record in pieces,
//! several records at once, the pipe closed mid-record), and polls the server's read once where
//! it must wait for more.

use std::io::{Read, Write};
use std::time::Duration;

use futures_util::FutureExt;
use rustls::ClientConnection;
use rustls::crypto::ring;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::*;

/// Pipe capacity: larger than anything a test sends, so no write waits for a read.
const PIPE: usize = 256 * 1024;

/// A server and a client that have completed a handshake over a pipe.
async fn connected() -> (UnbufferedTls<DuplexStream>, Peer) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let server_config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(certified.cert.der().clone()).unwrap();
    let client_config =
        rustls::ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = ClientConnection::new(Arc::new(client_config), name).unwrap();

    let (client_end, server_end) = tokio::io::duplex(PIPE);
    let mut hello = Vec::new();
    tls.write_tls(&mut hello).unwrap();
    let mut server = UnbufferedTls::new(server_end, Arc::new(server_config), hello).unwrap();
    server.respond().unwrap();
    let mut peer = Peer {
        tls,
        pipe: client_end,
    };
    let (server_done, ()) = tokio::join!(server.finish(), peer.handshake());
    server_done.unwrap();
    (server, peer)
}

/// The client's side: rustls's buffered client and its end of the pipe.
struct Peer {
    tls: ClientConnection,
    pipe: DuplexStream,
}

impl Peer {
    async fn handshake(&mut self) {
        while self.tls.is_handshaking() {
            if self.tls.wants_write() {
                let records = self.records();
                self.pipe.write_all(&records).await.unwrap();
            } else {
                self.receive().await;
            }
        }
        let records = self.records(); // the client's Finished, in TLS 1.3
        self.pipe.write_all(&records).await.unwrap();
    }

    /// The TLS bytes the client has queued, taken out without sending them.
    fn records(&mut self) -> Vec<u8> {
        let mut records = Vec::new();
        while self.tls.wants_write() {
            self.tls.write_tls(&mut records).unwrap();
        }
        records
    }

    /// `plaintext` as the client encrypts it: one record per piece.
    fn encrypt(&mut self, plaintext: &[&str]) -> Vec<u8> {
        for piece in plaintext {
            self.tls.writer().write_all(piece.as_bytes()).unwrap();
        }
        self.records()
    }

    /// Reads one chunk from the pipe into the client; false at the pipe's end.
    async fn receive(&mut self) -> bool {
        let mut chunk = vec![0; 16 * 1024];
        let read = self.pipe.read(&mut chunk).await.unwrap();
        self.take_in(&chunk[..read]);
        read > 0
    }

    /// Gives the client TLS bytes read from the pipe.
    fn take_in(&mut self, mut tls: &[u8]) {
        // rustls takes what fits its buffer each time: offer it the rest until all is in.
        while !tls.is_empty() {
            self.tls.read_tls(&mut tls).unwrap();
            self.tls.process_new_packets().unwrap();
        }
    }

    /// The plaintext of `tls`, taken out of the client as it decrypts (it holds 16 KiB at most).
    fn decrypt(&mut self, mut tls: &[u8]) -> Vec<u8> {
        let mut plaintext = Vec::new();
        while !tls.is_empty() {
            self.tls.read_tls(&mut tls).unwrap();
            self.tls.process_new_packets().unwrap();
            // Ends in WouldBlock once what was decrypted is read; what it read stays read.
            let _ = self.tls.reader().read_to_end(&mut plaintext);
        }
        plaintext
    }

    /// Gives the client what the pipe already holds (after the handshake: the server's session
    /// tickets).
    fn take_in_queued(&mut self) {
        let mut tls = vec![0; PIPE];
        while let Some(Ok(read @ 1..)) = self.pipe.read(&mut tls).now_or_never() {
            self.take_in(&tls[..read]);
        }
    }

    /// The TLS bytes one write of the server sent, read from the pipe without giving them to
    /// the client yet, and the length each of their records names.
    async fn one_write(&mut self) -> (Vec<u8>, Vec<usize>) {
        let mut tls = vec![0; PIPE];
        let read = self.pipe.read(&mut tls).await.unwrap();
        tls.truncate(read);
        let mut lengths = Vec::new();
        let mut rest = &tls[..];
        while let [_, _, _, high, low, ..] = *rest {
            let length = usize::from(u16::from_be_bytes([high, low]));
            lengths.push(length);
            rest = &rest[5 + length..];
        }
        (tls, lengths)
    }

    /// The server's plaintext up to `wanted` bytes (or its end).
    async fn plaintext(&mut self, wanted: usize) -> Vec<u8> {
        let mut received = Vec::new();
        loop {
            let mut chunk = [0; 4096];
            match self.tls.reader().read(&mut chunk) {
                Ok(0) => return received, // close_notify
                Ok(read) => received.extend_from_slice(&chunk[..read]),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    assert!(self.receive().await, "the pipe ended: {received:?}");
                }
                Err(err) => panic!("{err}: {received:?}"),
            }
            if received.len() >= wanted {
                return received;
            }
        }
    }
}

/// One read of the server's plaintext.
async fn read_once(server: &mut UnbufferedTls<DuplexStream>) -> Vec<u8> {
    let mut buffer = vec![0; 64 * 1024];
    let read = server.read(&mut buffer).await.unwrap();
    buffer.truncate(read);
    buffer
}

#[tokio::test]
async fn a_record_split_across_reads_is_read_once_whole() {
    let (mut server, mut peer) = connected().await;
    let record = peer.encrypt(&["GET /events HTTP/1.1\r\n\r\n"]);
    let (head, rest) = record.split_at(record.len() / 2);
    for piece in [&head[..3], &head[3..]] {
        peer.pipe.write_all(piece).await.unwrap();
        let mut buffer = [0; 1024];
        // The server takes what there is, then waits: no plaintext from part of a record.
        let read = server.read(&mut buffer).now_or_never();
        assert!(read.is_none(), "read on {piece:?}: {read:?}");
    }
    peer.pipe.write_all(rest).await.unwrap();
    assert_eq!(
        read_once(&mut server).await,
        b"GET /events HTTP/1.1\r\n\r\n"
    );
}

#[tokio::test]
async fn several_records_in_one_read_are_all_decrypted() {
    let (mut server, mut peer) = connected().await;
    let records = peer.encrypt(&["one ", "two ", "three"]);
    assert!(
        records.len() < SOCKET_READ,
        "one socket read takes them all"
    );
    peer.pipe.write_all(&records).await.unwrap();
    assert_eq!(read_once(&mut server).await, b"one two three");

    // And a read smaller than what was decrypted gets the rest next time.
    let records = peer.encrypt(&["four ", "five"]);
    peer.pipe.write_all(&records).await.unwrap();
    let mut small = [0; 6];
    server.read_exact(&mut small).await.unwrap();
    assert_eq!(&small, b"four f");
    assert_eq!(read_once(&mut server).await, b"ive");
}

#[tokio::test]
async fn writes_reach_the_client_and_shutdown_sends_close_notify() {
    let (mut server, mut peer) = connected().await;
    let event = b"data: hello\n\n".repeat(2000); // more than one record
    server.write_all(&event).await.unwrap();
    server.flush().await.unwrap();
    assert_eq!(peer.plaintext(event.len()).await, event);
    server.shutdown().await.unwrap();
    // The client reads the end as a clean one: close_notify, then the pipe's end.
    assert_eq!(peer.plaintext(1).await, b"");
    let mut rest = Vec::new();
    peer.pipe.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty(), "{rest:?}");
}

#[tokio::test]
async fn close_notify_from_the_client_ends_the_servers_reads() {
    let (mut server, mut peer) = connected().await;
    let mut records = peer.encrypt(&["last words"]);
    peer.tls.send_close_notify();
    records.extend(peer.records());
    peer.pipe.write_all(&records).await.unwrap();
    // The pipe stays open: the end is the close_notify, not the socket's.
    assert_eq!(read_once(&mut server).await, b"last words");
    assert_eq!(read_once(&mut server).await, b"");
    assert_eq!(read_once(&mut server).await, b"", "the end stays the end");
}

#[tokio::test]
async fn a_peer_that_closes_mid_record_gives_no_plaintext() {
    let (mut server, mut peer) = connected().await;
    let whole = peer.encrypt(&["before"]);
    let cut = peer.encrypt(&["never delivered"]);
    peer.pipe.write_all(&whole).await.unwrap();
    peer.pipe.write_all(&cut[..cut.len() - 5]).await.unwrap();
    drop(peer); // the pipe closes with a record half sent
    assert_eq!(read_once(&mut server).await, b"before");
    // What was cut is not read as plaintext, and the reads end rather than wait.
    let rest = tokio::time::timeout(Duration::from_secs(5), read_once(&mut server)).await;
    assert_eq!(rest.expect("the read ended"), b"");
}

/// Writes `events` as the lean path writes a chunk (its size line, its events, its CRLF) in one
/// vectored write, once the client has taken what the handshake left in the pipe. Returns what
/// the write took, the size line and the whole chunk.
async fn write_chunk(
    server: &mut UnbufferedTls<DuplexStream>,
    peer: &mut Peer,
    events: &[u8],
) -> (usize, Vec<u8>, Vec<u8>) {
    let size = format!("{:X}\r\n", events.len()).into_bytes();
    let mut whole = size.clone();
    whole.extend_from_slice(events);
    whole.extend_from_slice(b"\r\n");
    let pieces = [
        IoSlice::new(&size),
        IoSlice::new(events),
        IoSlice::new(b"\r\n"),
    ];
    peer.take_in_queued();
    let written = server.write_vectored(&pieces).await.unwrap();
    (written, size, whole)
}

#[tokio::test]
async fn a_write_of_pieces_goes_out_in_full_records_at_once() {
    let (mut server, mut peer) = connected().await;
    let events = b"data: 12345678\n\n".repeat(2500); // 40,000 bytes
    let (written, size, whole) = write_chunk(&mut server, &mut peer, &events).await;
    assert_eq!(written, whole.len(), "the whole chunk in one write");

    // One socket write carried all of it: the events in two full records and the rest, sealed
    // from where they were, and the size line and the CRLF in a record each (TLS 1.3: 17 bytes
    // beyond the plaintext). Not a write per record, and no record per 16 KiB of the chunk.
    let (tls, lengths) = peer.one_write().await;
    let events_records = [16 * 1024 + 17, 16 * 1024 + 17, 40_000 - 32 * 1024 + 17];
    assert_eq!(lengths[1..4], events_records, "{lengths:?}");
    assert_eq!([lengths[0], lengths[4]], [size.len() + 17, 2 + 17]);
    assert_eq!(peer.decrypt(&tls), whole);
}

#[tokio::test]
async fn a_write_past_the_limit_takes_its_first_max_write_bytes() {
    let (mut server, mut peer) = connected().await;
    let events = b"data: 12345678\n\n".repeat(6000); // 96,000 bytes
    let (written, size, whole) = write_chunk(&mut server, &mut peer, &events).await;
    assert_eq!(written, MAX_WRITE, "cut within the events");
    let (tls, lengths) = peer.one_write().await;
    let events_records = (MAX_WRITE - size.len()).div_ceil(16 * 1024);
    assert_eq!(lengths.len(), 1 + events_records, "{lengths:?}");
    assert_eq!(peer.decrypt(&tls), whole[..MAX_WRITE]);

    // The rest follows with the next write, as a writer that loops sends it.
    server.write_all(&whole[MAX_WRITE..]).await.unwrap();
    assert_eq!(
        peer.plaintext(whole.len() - MAX_WRITE).await,
        whole[MAX_WRITE..]
    );
}

#[tokio::test]
async fn small_pieces_go_out_in_one_record() {
    let (mut server, mut peer) = connected().await;
    let (written, _, whole) = write_chunk(&mut server, &mut peer, b"data: one event\n\n").await;
    assert_eq!(written, whole.len());
    let (tls, lengths) = peer.one_write().await;
    assert_eq!(lengths, [whole.len() + 17]);
    assert_eq!(peer.decrypt(&tls), whole);
}

#[tokio::test]
async fn the_write_buffer_stays_while_writing_and_goes_on_flush() {
    let (mut server, mut peer) = connected().await;
    assert_eq!(server.outgoing.held(), 0, "none after the handshake");
    let events = b"data: 12345678\n\n".repeat(2500);
    server.write_all(&events).await.unwrap();
    let held = server.outgoing.held();
    assert!(held > events.len(), "{held}");
    // The next write reuses it (no new room to zero, no allocation).
    server.write_all(&events).await.unwrap();
    assert_eq!(server.outgoing.held(), held);
    server.flush().await.unwrap();
    assert_eq!(
        server.outgoing.held(),
        0,
        "an idle connection keeps no buffer"
    );
    let mut both = events.clone();
    both.extend_from_slice(&events);
    assert_eq!(peer.plaintext(both.len()).await, both);
}
