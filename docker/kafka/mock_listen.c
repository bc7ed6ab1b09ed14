/*
 * docker/kafka/mock_listen.c
 *	LD_PRELOAD for test/kafka_broker in a container: its brokers listen
 *	on the container's network, not only on its loopback.
 *
 * librdkafka's mock cluster (2.0) binds each broker to 127.0.0.1 on a
 * port the kernel picks, and advertises that address in its metadata, so
 * only clients on the same loopback could reach it. Here such a bind is
 * made on every address, on ports MD_KAFKA_PORT, MD_KAFKA_PORT + 1, ...
 * (default 9092), and the broker's getsockname() tells the address
 * MD_KAFKA_ADVERTISED_ADDRESS (an IPv4 address of the container) instead,
 * which clients on the network then connect to.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define MAX_FDS 64

static int	listen_fds[MAX_FDS];
static int	nfds;

static int
is_ours(int fd)
{
	int			i;

	for (i = 0; i < nfds; i++)
		if (listen_fds[i] == fd)
			return 1;
	return 0;
}

int
bind(int fd, const struct sockaddr *addr, socklen_t len)
{
	static int	(*real_bind) (int, const struct sockaddr *, socklen_t);
	const struct sockaddr_in *in = (const struct sockaddr_in *) addr;
	struct sockaddr_in any;
	const char *base;

	if (real_bind == NULL)
		real_bind = (int (*) (int, const struct sockaddr *, socklen_t)) dlsym(RTLD_NEXT, "bind");
	if (addr->sa_family != AF_INET || len < sizeof(*in) ||
		in->sin_addr.s_addr != htonl(INADDR_LOOPBACK) || in->sin_port != 0 ||
		nfds == MAX_FDS)
		return real_bind(fd, addr, len);
	base = getenv("MD_KAFKA_PORT");
	memset(&any, 0, sizeof(any));
	any.sin_family = AF_INET;
	any.sin_addr.s_addr = htonl(INADDR_ANY);
	any.sin_port = htons((unsigned short) ((base ? atoi(base) : 9092) + nfds));
	if (real_bind(fd, (struct sockaddr *) &any, sizeof(any)) != 0)
		return -1;
	listen_fds[nfds++] = fd;
	return 0;
}

int
getsockname(int fd, struct sockaddr *addr, socklen_t *len)
{
	static int	(*real_getsockname) (int, struct sockaddr *, socklen_t *);
	struct sockaddr_in *in = (struct sockaddr_in *) addr;
	const char *adv = getenv("MD_KAFKA_ADVERTISED_ADDRESS");
	int			r;

	if (real_getsockname == NULL)
		real_getsockname = (int (*) (int, struct sockaddr *, socklen_t *)) dlsym(RTLD_NEXT, "getsockname");
	r = real_getsockname(fd, addr, len);
	if (r == 0 && adv != NULL && is_ours(fd) && addr->sa_family == AF_INET &&
		*len >= sizeof(*in))
		inet_pton(AF_INET, adv, &in->sin_addr);
	return r;
}
