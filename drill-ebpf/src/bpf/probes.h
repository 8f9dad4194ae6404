/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/* Shared between probes.bpf.c and drill-ebpf/src/lib.rs (#[repr(C)] mirrors). */
#ifndef DRILL_TCPSTATE_H
#define DRILL_TCPSTATE_H

struct drill_dwell_open {
	__u64 enter_ns;
	__u32 netns;
	__u16 port;        /* local port, host byte order */
	__u16 remote_port; /* host byte order */
	__u32 state;
	__u32 ino;         /* the socket's inode as /proc/net/tcp shows it; 0: no file */
};

struct drill_dwell_key {
	__u32 netns;
	__u16 port;
	__u16 state;
};

struct drill_dwell_stats {
	__u64 entered;
	__u64 exited;
	__u64 dwell_total_ns;
	__u64 dwell_max_ns;
};

struct drill_dwell_event {
	__u64 enter_ns;
	__u64 exit_ns;
	__u64 skaddr;
	__u32 netns;
	__u16 port;
	__u16 remote_port;
	__u16 state;
	__u16 new_state;
	__u32 _pad;
};

enum {
	DRILL_TCPSTATE_SEEN = 0,
	DRILL_TCPSTATE_EVENTS_LOST = 1,
	DRILL_TCPSTATE_OPEN_FULL = 2,
	DRILL_TCPSTATE_DELETE_FAILED = 3,
	DRILL_TCPSTATE_NCOUNTERS = 4,
};

/* Kinds of event counted in `event_counts`. */
enum {
	DRILL_EV_DROP = 1,        /* skb:kfree_skb; reason = enum skb_drop_reason, port 0 */
	DRILL_EV_RETRANSMIT = 2,  /* tcp:tcp_retransmit_skb; port = local port */
	DRILL_EV_RST_SENT = 3,    /* tcp:tcp_send_reset; port = local port */
	DRILL_EV_RST_RECEIVED = 4,/* tcp:tcp_receive_reset; port = local port */
	DRILL_EV_OOM_KILL = 5,    /* oom:mark_victim */
	DRILL_EV_EXEC = 6,        /* sched:sched_process_exec */
	DRILL_EV_ENOSPC = 7,      /* raw_syscalls:sys_exit returning -ENOSPC */
};

struct drill_event_key {
	__u32 netns;
	__u16 kind;
	__u16 port;
	__u32 reason;
};

/* Smoothed RTT samples per (netns, local port), from tcp:tcp_probe. */
struct drill_rtt_key {
	__u32 netns;
	__u16 port;
	__u16 _pad;
};

struct drill_rtt {
	__u64 samples;
	__u64 srtt_sum_us;
	__u64 srtt_max_us;
};

#define DRILL_ARGV_MAX 128

/* One process started inside a watched namespace (sched:sched_process_exec). */
struct drill_exec_event {
	__u64 ts_ns;
	__u32 netns;
	__u32 pid;
	__u32 ppid;
	char comm[16];
	__u32 argv_len;
	/* The new program's argv, NUL-separated, truncated to DRILL_ARGV_MAX - 1 bytes. */
	char argv[DRILL_ARGV_MAX];
};

/* The timeline's command capture (hosts' PID namespaces, `watched_pidns`). */
#define DRILL_CMD_ARGV 1024
#define DRILL_CMD_FILENAME 256
#define DRILL_CWD_DEPTH 16
#define DRILL_CWD_NAME 64

enum {
	DRILL_CMD_EXEC = 1,
	DRILL_CMD_EXIT = 2,
};

/* A program started (sched:sched_process_exec) in a watched PID namespace. */
struct drill_cmd_exec {
	__u32 type; /* DRILL_CMD_EXEC */
	__u32 pidns;
	__u64 ts_ns;
	__u32 pid;      /* tgid, machine's namespace */
	__u32 ppid;     /* real parent's tgid */
	__u32 host_pid; /* in the host's own namespace */
	__u32 uid;
	__u32 argv_len;   /* bytes of argv read */
	__u32 argv_total; /* arg_end - arg_start: more than read means cut */
	__u32 cwd_depth;  /* components in cwd, innermost first */
	__u32 cwd_cut;    /* more components than DRILL_CWD_DEPTH */
	char comm[16];
	char filename[DRILL_CMD_FILENAME];
	char cwd[DRILL_CWD_DEPTH][DRILL_CWD_NAME];
	char argv[DRILL_CMD_ARGV];
};

/* A thread-group leader exited (sched:sched_process_exit). */
struct drill_cmd_exit {
	__u32 type; /* DRILL_CMD_EXIT */
	__u32 pidns;
	__u64 ts_ns;
	__u32 pid;
	__u32 exit_code; /* wait status: code << 8 | signal */
};

#endif
