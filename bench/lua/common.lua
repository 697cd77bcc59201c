-- Shared by every workload script: headers from the environment, and a done()
-- that prints one machine-readable line (BENCHJSON {...}) for bench/run.py.
local common = {}

function common.headers(with_token)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["X-API-Key"] = os.getenv("BENCH_API_KEY")
  if with_token then
    wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
  end
end

-- wrk calls setup(thread) in the main Lua state once per thread: give each
-- thread its number, so generated values (emails) differ between threads.
local started = 0
function common.setup(thread)
  started = started + 1
  thread:set("thread_id", started)
end

function common.done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
    '"p50_us":%.1f,"p90_us":%.1f,"p99_us":%.1f,"mean_us":%.1f,"max_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max))
end

return common
