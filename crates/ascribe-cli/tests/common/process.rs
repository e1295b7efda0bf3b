//! Reading a process from `/proc`: its descriptors, its TCP sockets, who listens on a port.

/// The port of `http://127.0.0.1:PORT`.
pub fn port_of(base: &str) -> u16 {
    base.rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .expect("a port")
}

/// How many descriptors `/proc/<pid>/fd` lists, and the inodes of those that are sockets.
pub fn descriptors(pid: u32) -> (usize, Vec<u64>) {
    let mut count = 0;
    let mut sockets = Vec::new();
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return (0, sockets);
    };
    for entry in entries.map_while(Result::ok) {
        // A descriptor closed between the listing and this read is not counted.
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        count += 1;
        let target = target.to_string_lossy();
        if let Some(inode) = target
            .strip_prefix("socket:[")
            .and_then(|rest| rest.strip_suffix(']'))
        {
            sockets.extend(inode.parse::<u64>().ok());
        }
    }
    (count, sockets)
}

/// One line of `/proc/net/tcp*`: local port, remote port, state (hex), inode.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TcpSocket {
    /// The local port.
    pub local_port: u16,
    /// The remote port (0 for a listening socket).
    pub remote_port: u16,
    /// The state, in hex as the kernel prints it (`0A` is listening).
    pub state: String,
    /// The socket's inode, as `/proc/<pid>/fd` names it.
    pub inode: u64,
}

/// The TCP sockets (IPv4 and IPv6) of the network namespace `pid` is in.
pub fn tcp_table(pid: u32) -> Vec<TcpSocket> {
    let mut sockets = Vec::new();
    for file in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{file}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 10 {
                continue;
            }
            let port = |field: &str| {
                field
                    .rsplit(':')
                    .next()
                    .and_then(|port| u16::from_str_radix(port, 16).ok())
                    .unwrap_or(0)
            };
            sockets.push(TcpSocket {
                local_port: port(fields[1]),
                remote_port: port(fields[2]),
                state: fields[3].to_owned(),
                inode: fields[9].parse().unwrap_or(0),
            });
        }
    }
    sockets
}

/// The process whose listening socket is on `port`.
pub fn pid_listening_on(port: u16) -> u32 {
    let own = std::process::id();
    let listening: Vec<u64> = tcp_table(own)
        .into_iter()
        .filter(|socket| socket.local_port == port && socket.state == "0A")
        .map(|socket| socket.inode)
        .collect();
    for entry in std::fs::read_dir("/proc")
        .expect("/proc")
        .map_while(Result::ok)
    {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse().ok())
        else {
            continue;
        };
        if pid == own {
            continue;
        }
        let (_, sockets) = descriptors(pid);
        if sockets.iter().any(|inode| listening.contains(inode)) {
            return pid;
        }
    }
    panic!("no process listens on port {port}");
}
