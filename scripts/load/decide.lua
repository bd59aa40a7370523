-- wrk script: POST /decide with the guide's load-test body (locustfile.py).
-- Every request is a durable decision (a permit with a capability token).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"actor": "model", "proposed_action": "Execute web_search", "tool": "web_search", ' ..
           '"user_intent": "Research", "risk_level": 1, "policy_mode": "strict"}'

done = function(summary, latency, requests)
  io.write(string.format("LOAD requests=%d duration_s=%.2f rps=%.0f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f errors=%d\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout))
end
