/* See shim.h: real symbols for DPDK's static-inline fast path. */
#include <rte_config.h>
#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "shim.h"

/* The Rust side sizes its arrays from these; fail the build, not the run, if
 * DPDK ever changes them. */
_Static_assert(sizeof(((struct rte_mbuf *)0)->data_len) == sizeof(uint16_t), "data_len is 16 bits");
_Static_assert(sizeof(((struct rte_mbuf *)0)->pkt_len) == sizeof(uint32_t), "pkt_len is 32 bits");

uint16_t mf_rx_burst(uint16_t port_id, uint16_t queue_id, struct rte_mbuf **pkts, uint16_t nb_pkts)
{
	return rte_eth_rx_burst(port_id, queue_id, pkts, nb_pkts);
}

uint16_t mf_rx_burst_view(uint16_t port_id, uint16_t queue_id, struct rte_mbuf **pkts,
			  struct mf_pkt_view *views, uint16_t nb_pkts)
{
	uint16_t n = rte_eth_rx_burst(port_id, queue_id, pkts, nb_pkts);
	for (uint16_t i = 0; i < n; i++) {
		const struct rte_mbuf *m = pkts[i];
		views[i].data = rte_pktmbuf_mtod(m, const uint8_t *);
		views[i].pkt_len = m->pkt_len;
		views[i].data_len = m->data_len;
		views[i].nb_segs = m->nb_segs;
	}
	return n;
}

uint16_t mf_tx_burst(uint16_t port_id, uint16_t queue_id, struct rte_mbuf **pkts, uint16_t nb_pkts)
{
	return rte_eth_tx_burst(port_id, queue_id, pkts, nb_pkts);
}

struct rte_mbuf *mf_pktmbuf_alloc(struct rte_mempool *mp)
{
	return rte_pktmbuf_alloc(mp);
}

void mf_pktmbuf_free(struct rte_mbuf *m)
{
	rte_pktmbuf_free(m);
}

void mf_pktmbuf_free_bulk(struct rte_mbuf **mbufs, unsigned int count)
{
	rte_pktmbuf_free_bulk(mbufs, count);
}

void *mf_pktmbuf_mtod(struct rte_mbuf *m)
{
	return rte_pktmbuf_mtod(m, void *);
}

uint16_t mf_pktmbuf_data_len(const struct rte_mbuf *m)
{
	return rte_pktmbuf_data_len(m);
}

uint32_t mf_pktmbuf_pkt_len(const struct rte_mbuf *m)
{
	return rte_pktmbuf_pkt_len(m);
}

uint16_t mf_pktmbuf_tailroom(const struct rte_mbuf *m)
{
	return rte_pktmbuf_tailroom(m);
}

char *mf_pktmbuf_append(struct rte_mbuf *m, uint16_t len)
{
	return rte_pktmbuf_append(m, len);
}

struct rte_mempool *mf_pktmbuf_pool(const struct rte_mbuf *m)
{
	return m->pool;
}

int mf_rte_errno(void)
{
	return rte_errno;
}

unsigned int mf_lcore_id(void)
{
	return rte_lcore_id();
}

uint64_t mf_rdtsc(void)
{
	return rte_rdtsc();
}

uint64_t mf_get_tsc_hz(void)
{
	return rte_get_tsc_hz();
}

uint64_t mf_eth_rss_ip(void)
{
	return RTE_ETH_RSS_IP;
}

uint64_t mf_eth_rss_udp(void)
{
	return RTE_ETH_RSS_UDP;
}

uint16_t mf_mbuf_default_buf_size(void)
{
	return RTE_MBUF_DEFAULT_BUF_SIZE;
}
