/*
 * api/src/dashboard.c
 *	GET /: the dashboard, static files built into the module from
 *	assets/ by kodev (dashboard.html, .js, .css, favicon.svg, and
 *	lightweight-charts.js, which make api copies from node_modules). No
 *	build server and no CDN at run time; the page talks to the public
 *	endpoints only.
 */

#include <string.h>

#include "api.h"

int	api_dashboard(struct http_request *);

extern const u_int8_t	asset_dashboard_html[], asset_dashboard_js[];
extern const u_int8_t	asset_dashboard_css[], asset_lightweight_charts_js[];
extern const u_int32_t	asset_len_dashboard_html, asset_len_dashboard_js;
extern const u_int32_t	asset_len_dashboard_css;
extern const u_int32_t	asset_len_lightweight_charts_js;
extern const u_int8_t	asset_favicon_svg[];
extern const u_int32_t	asset_len_favicon_svg;

/* the page's own files only; EventSource and fetch to this origin */
#define DASHBOARD_CSP	"default-src 'none'; script-src 'self'; " \
			"style-src 'self'; connect-src 'self'; img-src 'self'; " \
			"frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

static const struct {
	const char		*path;
	const char		*type;
	const u_int8_t		*data;
	const u_int32_t		*len;
} files[] = {
	{ "/", "text/html; charset=utf-8", asset_dashboard_html,
	    &asset_len_dashboard_html },
	{ "/dashboard.js", "text/javascript; charset=utf-8", asset_dashboard_js,
	    &asset_len_dashboard_js },
	{ "/dashboard.css", "text/css; charset=utf-8", asset_dashboard_css,
	    &asset_len_dashboard_css },
	{ "/lightweight-charts.js", "text/javascript; charset=utf-8",
	    asset_lightweight_charts_js, &asset_len_lightweight_charts_js },
	{ "/favicon.svg", "image/svg+xml", asset_favicon_svg,
	    &asset_len_favicon_svg },
};

int
api_dashboard(struct http_request *req)
{
	struct api_ctx	*ctx = api_ctx_get(req, ROUTE_DASHBOARD);
	size_t		 i;

	(void)ctx;
	if (!api_method(req, HTTP_METHOD_GET | HTTP_METHOD_HEAD))
		return (KORE_RESULT_OK);
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		if (strcmp(req->path, files[i].path))
			continue;
		http_response_header(req, "content-type", files[i].type);
		http_response_header(req, "content-security-policy",
		    DASHBOARD_CSP);
		http_response_header(req, "x-content-type-options", "nosniff");
		http_response_header(req, "cache-control", "no-cache");
		http_response(req, 200, files[i].data, *files[i].len);
		return (KORE_RESULT_OK);
	}
	return (api_error(req, 404, "not_found", "no such file: %s",
	    req->path));
}
