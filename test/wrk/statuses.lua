-- wrk script: counts answers by HTTP status across all threads and prints
-- "status N COUNT" lines and the error counters when wrk is done.
local threads = {}

function setup(thread)
	table.insert(threads, thread)
end

function init(args)
	counts = {}
end

function response(status, headers, body)
	counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency, requests)
	local total = {}
	for _, t in ipairs(threads) do
		for s, n in pairs(t:get("counts")) do
			total[s] = (total[s] or 0) + n
		end
	end
	for s, n in pairs(total) do
		io.write(string.format("status %d %d\n", s, n))
	end
	local e = summary.errors
	io.write(string.format("errors connect %d read %d write %d timeout %d\n",
		e.connect, e.read, e.write, e.timeout))
end
