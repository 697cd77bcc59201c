-- login: the correct password, cycling through the seeded accounts.
-- args: number of seeded users
local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
common.headers(false)
setup = common.setup
local counter = 0
local users = 1000
local password = os.getenv("BENCH_PASSWORD")

function init(args)
  users = tonumber(args[1] or "1000")
end

function request()
  counter = counter + 1
  local index = (counter * 7 + (thread_id or 0) * 131) % users
  local body = string.format(
    '{"query":"mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken expiresIn } }",' ..
    '"variables":{"e":"user%d@bench.example","p":"%s"}}',
    index, password)
  return wrk.format(nil, nil, nil, body)
end

done = common.done
