-- signUp: a new account per request. Emails are unique per run (args[1]),
-- thread and request.
local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
common.headers(false)
setup = common.setup
local counter = 0
local run = "run"
local password = os.getenv("BENCH_SIGNUP_PASSWORD")

function init(args)
  run = args[1] or run
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"query":"mutation($i: SignUpInput!) { signUp(input: $i) { id email } }",' ..
    '"variables":{"i":{"email":"su-%s-t%d-%d@bench.example","password":"%s"}}}',
    run, thread_id or 0, counter, password)
  return wrk.format(nil, nil, nil, body)
end

done = common.done
