// SPDX-License-Identifier: GPL-2.0
/*
 * A fabric's path MTU: a tc classifier (clsact ingress, direct-action) on every port
 * of a switch, in the switch's own namespace, that drops a frame whose packet is
 * larger than the fabric carries (`pathmtu_config.mtu`, L3 bytes), as a narrower
 * network on the way would: silently, no ICMP (an L2 fabric sends none).
 *
 * A veth hands a GSO packet to the next namespace whole, without a size check, so
 * the size that counts for a GSO packet is that of the segments it would be on a
 * wire: its headers (up to the innermost transport header: VXLAN's inner frame
 * included) plus `gso_size`. One object per switch; `pathmtu_counters` (per CPU)
 * counts what was seen and dropped, for the engine's measurement and checks.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "pathmtu.h"

#define VXLAN_PORT 4789
#define VXLAN_HLEN 8

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pathmtu_config);
} pathmtu_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pathmtu_counters);
} pathmtu_counters SEC(".maps");

/*
 * Offset of the transport header's end of the L3 packet at `off` (ethertype `proto`),
 * or -1 when it cannot be parsed; `*l4proto` and `*l4off` say what and where it is.
 */
static __always_inline int l3_end(struct __sk_buff *skb, __u32 off, __u16 proto, __u8 *l4proto, __u32 *l4off)
{
	__u32 l4;
	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;
		if (bpf_skb_load_bytes(skb, off, &ip, sizeof(ip)) < 0)
			return -1;
		*l4proto = ip.protocol;
		l4 = off + ip.ihl * 4;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;
		if (bpf_skb_load_bytes(skb, off, &ip6, sizeof(ip6)) < 0)
			return -1;
		*l4proto = ip6.nexthdr;
		l4 = off + sizeof(ip6);
	} else {
		return -1;
	}
	*l4off = l4;
	if (*l4proto == IPPROTO_TCP) {
		struct tcphdr th;
		if (bpf_skb_load_bytes(skb, l4, &th, sizeof(th)) < 0)
			return -1;
		return l4 + th.doff * 4;
	}
	if (*l4proto == IPPROTO_UDP)
		return l4 + sizeof(struct udphdr);
	return -1;
}

/* The L3 size of the largest segment a GSO packet stands for. */
static __always_inline __u32 segment_size(struct __sk_buff *skb, __u16 proto)
{
	__u8 l4proto = 0;
	__u32 l4off = 0;
	int end = l3_end(skb, ETH_HLEN, proto, &l4proto, &l4off);
	if (end < 0)
		return skb->len - ETH_HLEN; /* unknown: judged whole */
	if (l4proto == IPPROTO_UDP) {
		struct udphdr uh;
		if (bpf_skb_load_bytes(skb, l4off, &uh, sizeof(uh)) == 0 && uh.dest == bpf_htons(VXLAN_PORT)) {
			/* VXLAN: its header, then the inner frame with its own headers. */
			__u32 inner = end + VXLAN_HLEN;
			__be16 inner_proto;
			if (bpf_skb_load_bytes(skb, inner + 12, &inner_proto, sizeof(inner_proto)) == 0) {
				__u8 p2 = 0;
				__u32 o2 = 0;
				int e2 = l3_end(skb, inner + ETH_HLEN, inner_proto, &p2, &o2);
				if (e2 > 0)
					end = e2;
			}
		}
	}
	return end - ETH_HLEN + skb->gso_size;
}

SEC("classifier")
int fabric_mtu(struct __sk_buff *skb)
{
	__u32 zero = 0;
	struct pathmtu_config *cfg = bpf_map_lookup_elem(&pathmtu_config, &zero);
	struct pathmtu_counters *c = bpf_map_lookup_elem(&pathmtu_counters, &zero);
	if (!cfg || !c)
		return TC_ACT_OK;
	c->seen++;
	if (!cfg->mtu || skb->len < ETH_HLEN)
		return TC_ACT_OK;
	__u16 proto = skb->protocol;
	__u32 size = skb->len - ETH_HLEN;
	__u32 segs = 1;
	if (skb->gso_size && size > cfg->mtu) {
		size = segment_size(skb, proto);
		segs = skb->gso_segs ? skb->gso_segs : 1;
	}
	if (size > c->largest)
		c->largest = size;
	if (size <= cfg->mtu)
		return TC_ACT_OK;
	c->dropped++;
	c->dropped_segs += segs;
	if (size > c->largest_dropped)
		c->largest_dropped = size;
	return TC_ACT_SHOT;
}

char LICENSE[] SEC("license") = "GPL";
