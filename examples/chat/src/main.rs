//! A TCP chat server: one goroutine per connection, one actor per room.
//!
//! ```text
//! cargo run -p chat --release                    # serve on 127.0.0.1:7979
//! cargo run -p chat --release -- 0.0.0.0:9000    # another address
//! cargo run -p chat --release -- --self-test     # clients talk, check, exit 0
//! nc 127.0.0.1 7979                              # try it
//! ```
//!
//! Protocol (lines of text): the first line is your nickname; you start in
//! room `lobby`. `/join ROOM` moves you, `/who` lists the room, `/quit`
//! leaves; any other line is said to your room and everyone in it sees
//! `[room] nick: text`.
//!
//! Shape:
//!
//! ```text
//! conn reader ──say/join/leave──► Room actor (one per room, supervised)
//!      ▲                                 │ try_send (a slow client misses lines,
//!      │                                 ▼  it never stalls the room)
//!      └── Registry actor (room name → Addr)   conn writer ──► socket
//! ```
//!
//! The registry is an actor too: it creates room actors on first use. Room
//! actors restart on panic (at most 3 times a minute); a restarted room
//! starts empty, and its members rejoin when they next speak.

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use goro::chan::{self, Sender};
use goro::net::{TcpListener, TcpStream};
use goro_patterns::actor::{Actor, Addr, Builder, Ctx, Reply, RestartPolicy};

/// Where the server listens unless told otherwise.
const DEFAULT_ADDR: &str = "127.0.0.1:7979";
/// Lines a client's writer may have queued before the room skips it.
const CLIENT_QUEUE: usize = 256;
/// How long an ask to an actor may take.
const ASK: Duration = Duration::from_secs(5);

/// A connected client as a room knows it.
#[derive(Debug, Clone)]
struct Member {
    /// Nickname.
    nick: String,
    /// Its writer's queue.
    out: Sender<String>,
}

/// Messages to a room.
#[derive(Debug)]
enum RoomMsg {
    /// `id` enters (or re-enters).
    Join(u64, Member),
    /// `id` leaves.
    Leave(u64),
    /// `id` says something (rejoins first if the room restarted).
    Say(u64, Member, String),
    /// The nicknames present.
    Who(Reply<Vec<String>>),
}

/// One room: its members, by connection id.
#[derive(Debug)]
struct Room {
    /// The room's name.
    name: String,
    /// Members by connection id.
    members: BTreeMap<u64, Member>,
}

impl Room {
    /// Sends `line` to every member but `except`; a member whose queue is
    /// full misses it.
    fn broadcast(&self, line: &str, except: Option<u64>) {
        for (id, m) in &self.members {
            if Some(*id) != except {
                let _ = m.out.try_send(line.to_string());
            }
        }
    }
}

impl Actor for Room {
    type Msg = RoomMsg;

    fn handle(&mut self, msg: RoomMsg, _ctx: &mut Ctx) {
        match msg {
            RoomMsg::Join(id, m) => {
                self.broadcast(&format!("* {} joined {}", m.nick, self.name), Some(id));
                let _ = m.out.try_send(format!(
                    "* you are in {} ({} here)",
                    self.name,
                    self.members.len() + 1
                ));
                self.members.insert(id, m);
            }
            RoomMsg::Leave(id) => {
                if let Some(m) = self.members.remove(&id) {
                    self.broadcast(&format!("* {} left {}", m.nick, self.name), None);
                }
            }
            RoomMsg::Say(id, m, text) => {
                let line = format!("[{}] {}: {}", self.name, m.nick, text);
                self.members.entry(id).or_insert(m);
                self.broadcast(&line, Some(id));
            }
            RoomMsg::Who(reply) => {
                reply.send(self.members.values().map(|m| m.nick.clone()).collect());
            }
        }
    }
}

/// Messages to the registry.
#[derive(Debug)]
enum RegistryMsg {
    /// The room called this, created on first use.
    Room(String, Reply<Addr<RoomMsg>>),
}

/// Room name → room actor.
#[derive(Debug, Default)]
struct Registry {
    /// The rooms made so far.
    rooms: BTreeMap<String, Addr<RoomMsg>>,
}

impl Actor for Registry {
    type Msg = RegistryMsg;

    fn handle(&mut self, msg: RegistryMsg, _ctx: &mut Ctx) {
        let RegistryMsg::Room(name, reply) = msg;
        let addr = self.rooms.entry(name.clone()).or_insert_with(|| {
            let n = name.clone();
            let (addr, handle) = Builder::new()
                .name(format!("room:{name}"))
                .mailbox(128)
                .restart(RestartPolicy::new(3, Duration::from_secs(60)))
                .spawn_with(move || Room {
                    name: n.clone(),
                    members: BTreeMap::new(),
                });
            // Detached: a room lives as long as the server.
            drop(handle);
            addr
        });
        reply.send(addr.clone());
    }
}

/// The room called `name`.
fn room(registry: &Addr<RegistryMsg>, name: &str) -> io::Result<Addr<RoomMsg>> {
    registry
        .ask(|r| RegistryMsg::Room(name.to_string(), r), ASK)
        .map_err(|e| io::Error::other(e.to_string()))
}

/// Serves one connection until it closes or says `/quit`.
fn client(conn: TcpStream, id: u64, registry: Addr<RegistryMsg>) -> io::Result<()> {
    // Chat lines are small and interactive: send them at once.
    conn.set_nodelay(true)?;
    let conn = Arc::new(conn);
    let (out, lines) = chan::bounded::<String>(CLIENT_QUEUE);
    let writer = {
        let conn = conn.clone();
        goro::go(move || -> io::Result<()> {
            for line in &lines {
                (&*conn).write_all(line.as_bytes())?;
                (&*conn).write_all(b"\n")?;
            }
            Ok(())
        })
    };
    let mut reader = BufReader::new(&*conn);
    let _ = out.send("welcome! your nickname?".into());
    let mut nick = String::new();
    if reader.read_line(&mut nick)? == 0 {
        return Ok(());
    }
    let me = Member {
        nick: nick.trim().to_string(),
        out: out.clone(),
    };
    let mut here = ("lobby".to_string(), room(&registry, "lobby")?);
    let _ = here.1.send(RoomMsg::Join(id, me.clone()));
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        let text = line.trim();
        if text == "/quit" {
            break;
        } else if text == "/who" {
            let who = here
                .1
                .ask(RoomMsg::Who, ASK)
                .map_err(|e| io::Error::other(e.to_string()))?;
            let _ = out.send(format!("* in {}: {}", here.0, who.join(", ")));
        } else if let Some(name) = text.strip_prefix("/join ") {
            let name = name.trim().to_string();
            let next = room(&registry, &name)?;
            let _ = here.1.send(RoomMsg::Leave(id));
            let _ = next.send(RoomMsg::Join(id, me.clone()));
            here = (name, next);
        } else if !text.is_empty() {
            let _ = here.1.send(RoomMsg::Say(id, me.clone(), text.to_string()));
        }
    }
    let _ = here.1.send(RoomMsg::Leave(id));
    drop((out, me)); // the rooms still hold clones until Leave is handled
    let _ = conn.shutdown(std::net::Shutdown::Read);
    let _ = writer.join();
    Ok(())
}

/// How long one `accept` waits before it is re-armed.
const ACCEPT_REARM: Duration = Duration::from_millis(50);

/// Accepts forever, one goroutine per connection.
///
/// Each `accept` waits at most `ACCEPT_REARM`, then tries again: a
/// workaround for a lost wake-up in goro's poller, where an `accept` parked
/// just as a connection arrives can miss it until the next one comes. A
/// fresh `accept` call tries the syscall first, so it finds the connection.
fn serve(listener: TcpListener, registry: Addr<RegistryMsg>) {
    let ids = AtomicU64::new(0);
    loop {
        let _ = listener.set_deadline(Some(Instant::now() + ACCEPT_REARM));
        let conn = match listener.accept() {
            Ok((c, _)) => c,
            Err(e) if e.kind() == io::ErrorKind::TimedOut => continue,
            Err(e) => {
                eprintln!("chat: accept: {e}");
                goro::time::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let id = ids.fetch_add(1, Ordering::Relaxed);
        let registry = registry.clone();
        let _ = goro::go(move || {
            match client(conn, id, registry) {
                // A client that hangs up mid-line is an ordinary goodbye.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
                    ) => {}
                Err(e) => eprintln!("chat: client {id}: {e}"),
                Ok(()) => {}
            }
        });
    }
}

/// A test client: a connection with a line reader and a deadline.
struct TestClient {
    /// Who.
    nick: &'static str,
    /// The connection.
    conn: Arc<TcpStream>,
    /// Lines from the server.
    reader: BufReader<TcpStream>,
}

impl TestClient {
    /// Connects and sends the nickname.
    fn connect(addr: SocketAddr, nick: &'static str) -> io::Result<TestClient> {
        let conn = TcpStream::connect(addr)?;
        conn.set_read_timeout(Some(Duration::from_secs(5)))?;
        conn.set_nodelay(true)?;
        let reader = BufReader::new(conn.try_clone()?);
        let mut c = TestClient {
            nick,
            conn: Arc::new(conn),
            reader,
        };
        c.expect("welcome!")?;
        c.say(nick)?;
        c.expect("* you are in lobby")?;
        Ok(c)
    }

    /// Sends one line.
    fn say(&self, line: &str) -> io::Result<()> {
        (&*self.conn).write_all(format!("{line}\n").as_bytes())
    }

    /// Reads lines until one starts with `prefix` (others, like join
    /// notices, are skipped); fails on timeout.
    fn expect(&mut self, prefix: &str) -> io::Result<String> {
        let mut line = String::new();
        loop {
            line.clear();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(io::Error::other(format!(
                    "{}: closed while waiting for {prefix:?}",
                    self.nick
                )));
            }
            if line.starts_with(prefix) {
                return Ok(line.trim_end().to_string());
            }
        }
    }

    /// Waits until `who` lists exactly `nicks` (sorted), as the room sees it.
    fn wait_who(&mut self, room: &str, nicks: &[&str]) -> io::Result<()> {
        let want = format!("* in {room}: {}", nicks.join(", "));
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            self.say("/who")?;
            let got = self.expect("* in ")?;
            let mut names: Vec<&str> = got
                .trim_start_matches(&format!("* in {room}: "))
                .split(", ")
                .collect();
            names.sort_unstable();
            if format!("* in {room}: {}", names.join(", ")) == want {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(io::Error::other(format!(
                    "{}: /who said {got:?}, wanted {want:?}",
                    self.nick
                )));
            }
            goro::time::sleep(Duration::from_millis(5));
        }
    }
}

/// Starts a server, has three clients talk across two rooms, checks who
/// hears what.
fn self_test() -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    println!("chat: listening on {addr}");
    let (registry, _registry_handle) = goro_patterns::actor::spawn(Registry::default());
    let _server = goro::go(move || serve(listener, registry));

    let t = Instant::now();
    let mut alice = TestClient::connect(addr, "alice")?;
    let mut bob = TestClient::connect(addr, "bob")?;
    let mut carol = TestClient::connect(addr, "carol")?;
    carol.say("/join rust")?;
    carol.expect("* you are in rust")?;
    alice.wait_who("lobby", &["alice", "bob"])?;

    alice.say("hello lobby")?;
    let got = bob.expect("[lobby]")?;
    check(&got, "[lobby] alice: hello lobby")?;
    carol.say("anyone in rust?")?;
    bob.say("hi alice")?;
    check(&alice.expect("[lobby]")?, "[lobby] bob: hi alice")?;

    carol.say("/join lobby")?;
    carol.expect("* you are in lobby")?;
    alice.wait_who("lobby", &["alice", "bob", "carol"])?;
    bob.say("welcome back carol")?;
    check(&alice.expect("[lobby]")?, "[lobby] bob: welcome back carol")?;
    // Carol's first lobby line after the join: she never heard the rust
    // room's line or alice's earlier lobby message.
    check(&carol.expect("[")?, "[lobby] bob: welcome back carol")?;

    alice.say("/quit")?;
    bob.wait_who("lobby", &["bob", "carol"])?;
    carol.say("/quit")?;
    bob.wait_who("lobby", &["bob"])?;
    bob.say("/quit")?;
    let messages = 4;
    println!(
        "self-test: 3 clients, 2 rooms, {messages} messages routed correctly in {:.2?}",
        t.elapsed()
    );
    Ok(())
}

/// Fails unless `got == want`.
fn check(got: &str, want: &str) -> io::Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(io::Error::other(format!("got {got:?}, wanted {want:?}")))
    }
}

#[goro::main]
fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--self-test") {
        return match self_test() {
            Ok(()) => {
                println!("self-test: ok");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("self-test: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let addr = args.first().map_or(DEFAULT_ADDR, String::as_str);
    let listener = match TcpListener::bind(addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("chat: {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("chat: listening on {addr}; try: nc {addr}");
    let (registry, _handle) = goro_patterns::actor::spawn(Registry::default());
    serve(listener, registry);
    ExitCode::SUCCESS
}
