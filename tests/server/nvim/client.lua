-- Drives Neovim's built-in LSP client (0.7 API) against the QVR server and writes what
-- it saw as JSON. Read by tests/server/test_neovim.py; configured through environment:
--   QVR_PYTHON  python executable     QVR_FILE  the .qvr file to open
--   QVR_OUT     JSON output path      QVR_LOG   progress log (for debugging failures)
local python = os.getenv("QVR_PYTHON")
local file = os.getenv("QVR_FILE")
local out_path = os.getenv("QVR_OUT")
local result = { steps = {} }

local function note(step)
  table.insert(result.steps, step)
end

local function finish()
  local f = assert(io.open(out_path, "w"))
  f:write(vim.fn.json_encode(result))
  f:close()
  vim.cmd("qall!")
end

local ok, err = pcall(function()
  local id = vim.lsp.start_client({
    name = "qvr",
    cmd = { python, "-m", "quivers_lsp" },
    root_dir = vim.fn.fnamemodify(file, ":h"),
  })
  assert(id, "start_client failed")
  local client = vim.lsp.get_client_by_id(id)
  vim.cmd("edit " .. vim.fn.fnameescape(file))
  local buf = vim.api.nvim_get_current_buf()
  vim.bo[buf].filetype = "qvr"
  vim.lsp.buf_attach_client(buf, id)

  result.initialized = vim.wait(20000, function() return client.initialized == true end, 20)
  note("initialized")
  result.server_name = client.server_capabilities and "ok" or "missing"
  result.hover_provider = client.server_capabilities.hoverProvider == true

  -- the clean reference program: wait for its (empty) diagnostics to be published
  local published = false
  local default = vim.lsp.handlers["textDocument/publishDiagnostics"]
  vim.lsp.handlers["textDocument/publishDiagnostics"] = function(e, params, ctx, config)
    published = true
    return default(e, params, ctx, config)
  end
  result.clean_published = vim.wait(20000, function() return published end, 20)
  result.clean = #vim.diagnostic.get(buf)
  note("clean diagnostics")

  -- introduce an error: scan(cell) -> scan(cel) on line 7 (index 6)
  local line = vim.api.nvim_buf_get_lines(buf, 6, 7, false)[1]
  local broken = line:gsub("scan%(cell%)", "scan(cel)")
  vim.api.nvim_buf_set_lines(buf, 6, 7, false, { broken })
  result.got_error = vim.wait(20000, function() return #vim.diagnostic.get(buf) > 0 end, 20)
  result.diagnostics = {}
  for _, d in ipairs(vim.diagnostic.get(buf)) do
    table.insert(result.diagnostics, {
      lnum = d.lnum, col = d.col, end_col = d.end_col, message = d.message,
      code = d.code or (d.user_data and d.user_data.lsp and d.user_data.lsp.code),
      severity = d.severity,
    })
  end
  note("error diagnostics")

  -- hover on 'lm_head' in 'observe next_token : Token <- lm_head(h)' (line 10, index 9)
  local observe = vim.api.nvim_buf_get_lines(buf, 9, 10, false)[1]
  vim.api.nvim_win_set_cursor(0, { 10, observe:find("lm_head", 1, true) + 1 })
  local hover = client.request_sync(
    "textDocument/hover", vim.lsp.util.make_position_params(), 10000, buf
  )
  if hover and hover.result then
    result.hover = hover.result.contents.value or hover.result.contents
  end
  note("hover")

  -- definition of 'backbone' in 'sample h <- backbone' (line 9, index 8)
  local step = vim.api.nvim_buf_get_lines(buf, 8, 9, false)[1]
  vim.api.nvim_win_set_cursor(0, { 9, step:find("backbone", 1, true) + 1 })
  local params = vim.lsp.util.make_position_params()
  local definition = client.request_sync("textDocument/definition", params, 10000, buf)
  if definition and definition.result then
    local loc = definition.result[1] or definition.result
    result.definition = {
      uri = loc.uri or loc.targetUri,
      line = (loc.range or loc.targetSelectionRange).start.line,
      character = (loc.range or loc.targetSelectionRange).start.character,
    }
  end
  note("definition")

  -- the server's process and its children (the run worker), to check none outlives it
  result.server_pid = client.rpc.pid
  result.children = vim.fn.systemlist({
    python, "-c",
    "import os,sys\n"
    .. "p=sys.argv[1]\n"
    .. "for e in os.listdir('/proc'):\n"
    .. "    try:\n"
    .. "        s=open('/proc/'+e+'/stat').read().rsplit(')',1)[1].split()\n"
    .. "    except (OSError, IndexError):\n"
    .. "        continue\n"
    .. "    if s[1]==p: print(e)\n",
    tostring(client.rpc.pid),
  })
  client.stop()
  result.stopped = vim.wait(10000, function() return client.is_stopped() end, 20)
  note("stopped")
end)

if not ok then
  result.error = tostring(err)
end
finish()
