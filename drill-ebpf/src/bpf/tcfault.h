/* Shared with drill-ebpf/src/lib.rs (TcRule, TcCounters): keep the layouts equal. */
#ifndef TCFAULT_H
#define TCFAULT_H

struct tc_match_rule {
	__u32 enabled;
	__u32 drop_ppm;   /* drop probability, parts per million (>= 1000000: all) */
	__u32 saddr;      /* network order; matched under saddr_mask */
	__u32 saddr_mask; /* 0: any source */
	__u16 dport;      /* host order; 0: any port */
	__u8 proto;       /* IPPROTO_*; 0: any protocol */
	__u8 pad;
};

struct tc_match_counters {
	__u64 seen;
	__u64 matched;
	__u64 dropped;
};

#endif
