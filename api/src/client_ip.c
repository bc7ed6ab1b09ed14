/*
 * api/src/client_ip.c
 *	The client's address, for rate limits and the local /metrics scrape.
 *
 * The client IP is the peer address; X-Forwarded-For is believed only
 * when the peer is one of MD_API_TRUSTED_PROXIES, and then its right-most
 * address that is not itself a trusted proxy is the client, whatever the
 * header's length (a long one used to fall back to the proxy's address,
 * a fresh bucket). An entry there that is not an address makes the client
 * "invalid-xff": not local, and one bucket of its own, never the proxy's.
 *
 * Rate limits count an IPv6 client by its network (MD_API_RATE_LIMIT_IPV6_PREFIX,
 * /64 by default): one host usually holds a whole /64.
 */

#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api.h"

static int
addr_of(struct http_request *req, char *buf, size_t len)
{
	struct connection	*c = req->owner;

	if (c->family == AF_INET)
		return (inet_ntop(AF_INET, &c->addr.ipv4.sin_addr, buf,
		    len) != NULL);
	if (c->family == AF_INET6)
		return (inet_ntop(AF_INET6, &c->addr.ipv6.sin6_addr, buf,
		    len) != NULL);
	(void)kore_strlcpy(buf, "local", len);
	return (1);
}

static int
is_trusted(const char *ip)
{
	const char	*p = api_cfg.trusted_proxies;
	size_t		 n = strlen(ip);

	while (p != NULL && *p != '\0') {
		while (*p == ',' || *p == ' ')
			p++;
		if (!strncmp(p, ip, n) && (p[n] == ',' || p[n] == ' ' ||
		    p[n] == '\0'))
			return (1);
		p = strchr(p, ',');
	}
	return (0);
}

static int
ip_valid(const char *s)
{
	struct in6_addr	a6;
	struct in_addr	a4;

	return (inet_pton(AF_INET, s, &a4) == 1 ||
	    inet_pton(AF_INET6, s, &a6) == 1);
}

/*
 * The client of an X-Forwarded-For line: its addresses right to left, the
 * first that is not a trusted proxy is copied to buf (1); 0 when the line
 * holds only trusted proxies (look at the line before); -1 when an entry
 * is not an address (stop: nothing left of it can be believed).
 */
static int
xff_line_client(const char *line, char *buf, size_t len)
{
	const char	*end = line + strlen(line), *start;
	char		 addr[INET6_ADDRSTRLEN + 8];
	size_t		 n;

	for (;;) {
		while (end > line && (end[-1] == ' ' || end[-1] == ','))
			end--;
		if (end == line)
			return (0);
		for (start = end; start > line && start[-1] != ','; start--)
			;
		while (*start == ' ')
			start++;
		n = (size_t)(end - start);
		if (n >= sizeof(addr))
			return (-1);
		memcpy(addr, start, n);
		addr[n] = '\0';
		if (!ip_valid(addr))
			return (-1);
		if (!is_trusted(addr)) {
			if (n < len)
				memcpy(buf, addr, n + 1);
			return (1);
		}
		end = start;
	}
}

/*
 * Every X-Forwarded-For line counts, last line first (a proxy may append
 * a line of its own rather than extend the client's), and only from the
 * right: a client's own long header before ours changes nothing.
 */
#define XFF_LINES	16	/* the last ones are kept: ours are last */

const char *
api_client_ip(struct http_request *req, char *buf, size_t len)
{
	struct http_header	*hdr;
	const char		*lines[XFF_LINES];
	int			 n = 0, i, rc;

	if (!addr_of(req, buf, len))
		(void)kore_strlcpy(buf, "unknown", len);
	if (!is_trusted(buf))
		return (buf);
	TAILQ_FOREACH(hdr, &req->req_headers, list) {
		if (!strcasecmp(hdr->header, "x-forwarded-for"))
			lines[n++ % XFF_LINES] = hdr->value;
	}
	for (i = n - 1; i >= 0 && i >= n - XFF_LINES; i--) {
		rc = xff_line_client(lines[i % XFF_LINES], buf, len);
		if (rc == -1)
			(void)kore_strlcpy(buf, "invalid-xff", len);
		if (rc != 0)
			break;
	}
	return (buf);
}

const char *
api_client_bucket(struct http_request *req, char *buf, size_t len)
{
	struct in6_addr	a6;
	int		bits = api_cfg.rl_ipv6_prefix, i;
	size_t		n;

	(void)api_client_ip(req, buf, len);
	if (bits >= 128 || inet_pton(AF_INET6, buf, &a6) != 1)
		return (buf);
	for (i = 0; i < 16; i++) {
		if (bits >= 8)
			bits -= 8;
		else {
			a6.s6_addr[i] &= (u_int8_t)(0xff << (8 - bits));
			bits = 0;
		}
	}
	if (inet_ntop(AF_INET6, &a6, buf, len) != NULL) {
		n = strlen(buf);
		(void)snprintf(buf + n, len - n, "%s", api_cfg.rl_ipv6_suffix);
	}
	return (buf);
}

int
api_is_local(struct http_request *req)
{
	char	ip[INET6_ADDRSTRLEN + 8];

	(void)api_client_ip(req, ip, sizeof(ip));
	return (!strncmp(ip, "127.", 4) || !strcmp(ip, "::1") ||
	    !strcmp(ip, "local"));
}
