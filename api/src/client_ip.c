/*
 * api/src/client_ip.c
 *	The client's address, for rate limits and the local /metrics scrape.
 *
 * The client IP is the peer address; X-Forwarded-For is believed only
 * when the peer is one of MD_API_TRUSTED_PROXIES, and then its right-most
 * address that is not itself a trusted proxy is the client.
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
 * All X-Forwarded-For lines, in order, as one list: a proxy may append a
 * line of its own rather than extend the client's.
 */
static int
xff_list(struct http_request *req, char *list, size_t len)
{
	struct http_header	*hdr;
	size_t			 used = 0;
	int			 found = 0, n;

	list[0] = '\0';
	TAILQ_FOREACH(hdr, &req->req_headers, list) {
		if (strcasecmp(hdr->header, "x-forwarded-for"))
			continue;
		n = snprintf(list + used, len - used, "%s%s", found ? "," : "",
		    hdr->value);
		if (n < 0 || (size_t)n >= len - used)
			return (0);	/* too long to believe */
		used += n;
		found = 1;
	}
	return (found);
}

const char *
api_client_ip(struct http_request *req, char *buf, size_t len)
{
	char		 list[1024], *end, *start;
	size_t		 n;

	if (!addr_of(req, buf, len))
		(void)kore_strlcpy(buf, "unknown", len);
	if (!is_trusted(buf) || !xff_list(req, list, sizeof(list)))
		return (buf);

	/* right to left: the first address not one of our proxies */
	for (;;) {
		end = list + strlen(list);
		while (end > list && (end[-1] == ' ' || end[-1] == ','))
			*--end = '\0';
		if (end == list)
			break;
		start = strrchr(list, ',');
		start = start ? start + 1 : list;
		while (*start == ' ')
			start++;
		if (!ip_valid(start))
			break;
		if (!is_trusted(start)) {
			n = strlen(start);
			if (n < len)
				memcpy(buf, start, n + 1);
			break;
		}
		*start = '\0';
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
