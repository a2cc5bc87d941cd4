/*
 * mediafork's C shim over DPDK. DPDK's fast path (rx/tx burst, mbuf alloc and
 * free, data pointer, errno, TSC) is made of `static inline` functions and
 * macros that have no symbol in the shared libraries, so bindgen cannot bind
 * them; shim.c compiles each one into a real function with the same flags as
 * DPDK itself (pkg-config --cflags libdpdk).
 */
#ifndef MEDIAFORK_DPDK_SHIM_H
#define MEDIAFORK_DPDK_SHIM_H

#include <stdint.h>

struct rte_mbuf;
struct rte_mempool;

/* Where one received frame's bytes are: filled by mf_rx_burst_view so that a
 * whole burst needs one call across the language boundary, not three per
 * packet. */
struct mf_pkt_view {
	const uint8_t *data; /* rte_pktmbuf_mtod(m, const uint8_t *) */
	uint32_t pkt_len;    /* whole frame, all segments */
	uint16_t data_len;   /* bytes in this (first) segment */
	uint16_t nb_segs;
};

uint16_t mf_rx_burst(uint16_t port_id, uint16_t queue_id, struct rte_mbuf **pkts, uint16_t nb_pkts);
uint16_t mf_rx_burst_view(uint16_t port_id, uint16_t queue_id, struct rte_mbuf **pkts,
			  struct mf_pkt_view *views, uint16_t nb_pkts);
uint16_t mf_tx_burst(uint16_t port_id, uint16_t queue_id, struct rte_mbuf **pkts, uint16_t nb_pkts);

struct rte_mbuf *mf_pktmbuf_alloc(struct rte_mempool *mp);
void mf_pktmbuf_free(struct rte_mbuf *m);
void mf_pktmbuf_free_bulk(struct rte_mbuf **mbufs, unsigned int count);
void *mf_pktmbuf_mtod(struct rte_mbuf *m);
uint16_t mf_pktmbuf_data_len(const struct rte_mbuf *m);
uint32_t mf_pktmbuf_pkt_len(const struct rte_mbuf *m);
uint16_t mf_pktmbuf_tailroom(const struct rte_mbuf *m);
char *mf_pktmbuf_append(struct rte_mbuf *m, uint16_t len);
struct rte_mempool *mf_pktmbuf_pool(const struct rte_mbuf *m);

int mf_rte_errno(void);
unsigned int mf_lcore_id(void);
uint64_t mf_rdtsc(void);
uint64_t mf_get_tsc_hz(void);

/* Values of DPDK macros that expand to function-like macros (RTE_BIT64),
 * which bindgen cannot evaluate. */
uint64_t mf_eth_rss_ip(void);
uint64_t mf_eth_rss_udp(void);
uint16_t mf_mbuf_default_buf_size(void);

#endif
