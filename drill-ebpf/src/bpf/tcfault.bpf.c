// SPDX-License-Identifier: GPL-2.0
/*
 * The eBPF fault: a tc classifier (clsact, direct-action) that drops the packets
 * a rule in a BPF map matches, each with a probability. One object is loaded per
 * fault, so its two maps belong to that fault alone:
 *   - `tc_rule`: what to match and how often to drop (the daemon rewrites it to
 *     retune the fault live; `enabled = 0` lets everything pass);
 *   - `tc_counters`: per-CPU packets seen, matched and dropped.
 * Only IPv4 and IPv6 without extension headers are parsed; anything else passes.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "tcfault.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tc_match_rule);
} tc_rule SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tc_match_counters);
} tc_counters SEC(".maps");

SEC("classifier")
int cls_main(struct __sk_buff *skb)
{
	__u32 zero = 0;
	struct tc_match_rule *r = bpf_map_lookup_elem(&tc_rule, &zero);
	struct tc_match_counters *c = bpf_map_lookup_elem(&tc_counters, &zero);
	if (!r || !c)
		return TC_ACT_OK;
	c->seen++;
	if (!r->enabled)
		return TC_ACT_OK;

	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return TC_ACT_OK;
	__u8 proto;
	void *l4;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > end)
			return TC_ACT_OK;
		if (r->saddr_mask && (ip->saddr & r->saddr_mask) != r->saddr)
			return TC_ACT_OK;
		proto = ip->protocol;
		l4 = (void *)ip + ip->ihl * 4;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > end)
			return TC_ACT_OK;
		if (r->saddr_mask) /* an IPv4 source rule never matches IPv6 */
			return TC_ACT_OK;
		proto = ip6->nexthdr;
		l4 = ip6 + 1;
	} else {
		return TC_ACT_OK;
	}
	if (r->proto && proto != r->proto)
		return TC_ACT_OK;
	if (r->dport) {
		/* TCP and UDP both start with source port, destination port. */
		__be16 *ports = l4;
		if ((void *)(ports + 2) > end)
			return TC_ACT_OK;
		if (bpf_ntohs(ports[1]) != r->dport)
			return TC_ACT_OK;
	}
	c->matched++;
	if (r->drop_ppm >= 1000000 || bpf_get_prandom_u32() % 1000000 < r->drop_ppm) {
		c->dropped++;
		return TC_ACT_SHOT;
	}
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
