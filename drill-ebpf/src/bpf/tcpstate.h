/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/* Shared between tcpstate.bpf.c and drill-ebpf/src/lib.rs (#[repr(C)] mirrors). */
#ifndef DRILL_TCPSTATE_H
#define DRILL_TCPSTATE_H

struct drill_dwell_open {
	__u64 enter_ns;
	__u32 netns;
	__u16 port;        /* local port, host byte order */
	__u16 remote_port; /* host byte order */
	__u32 state;
	__u32 _pad;
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
	DRILL_TCPSTATE_NCOUNTERS = 3,
};

#endif
