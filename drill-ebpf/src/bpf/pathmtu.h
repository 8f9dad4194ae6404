/* Shared with drill-ebpf/src/lib.rs (PathMtuConfig, PathMtuCounters): keep the layouts equal. */
#ifndef PATHMTU_H
#define PATHMTU_H

struct pathmtu_config {
	__u32 mtu; /* the largest L3 packet the fabric carries; 0: no limit */
	__u32 pad;
};

struct pathmtu_counters {
	__u64 seen;      /* frames that entered the fabric */
	__u64 dropped;   /* frames (or GSO packets) dropped as too big */
	__u64 dropped_segs; /* the segments those GSO packets would have been on the wire */
	__u64 largest;   /* the largest L3 size seen (per segment) */
	__u64 largest_dropped; /* the largest L3 size dropped (per segment) */
};

#endif
