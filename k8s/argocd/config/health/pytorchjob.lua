-- Argo CD health of a Kubeflow PyTorchJob (kubeflow.org/v1), from the training operator's
-- status.conditions (types Created, Running, Restarting, Succeeded, Failed, Suspended; the ones
-- with status "True" hold) and status.replicaStatuses (active / succeeded / failed per replica).
-- Failed > Succeeded > Suspended > Restarting > Running > Created; no status yet = Progressing.
local hs = {status = "Progressing", message = "Waiting for the training operator"}
if obj.status == nil or obj.status.conditions == nil then
  return hs
end

local holds = {}
for _, condition in ipairs(obj.status.conditions) do
  if condition.status == "True" then
    holds[condition.type] = condition
  end
end

local function text(condition, fallback)
  if condition.message ~= nil and condition.message ~= "" then
    return condition.message
  end
  return fallback
end

local function replicas()
  local statuses = obj.status.replicaStatuses
  if statuses == nil then
    return ""
  end
  local parts = {}
  for _, kind in ipairs({"Master", "Worker"}) do
    local s = statuses[kind]
    if s ~= nil then
      -- concatenation, not string.format("%d"): JSON numbers are floats in gopher-lua
      table.insert(parts, kind .. " " .. (s.active or 0) .. " active, " .. (s.succeeded or 0) ..
        " succeeded, " .. (s.failed or 0) .. " failed")
    end
  end
  if #parts == 0 then
    return ""
  end
  return " (" .. table.concat(parts, "; ") .. ")"
end

if holds.Failed ~= nil then
  hs.status = "Degraded"
  hs.message = text(holds.Failed, "PyTorchJob failed") .. replicas()
elseif holds.Succeeded ~= nil then
  hs.status = "Healthy"
  hs.message = text(holds.Succeeded, "PyTorchJob succeeded")
elseif holds.Suspended ~= nil then
  hs.status = "Suspended"
  hs.message = text(holds.Suspended, "PyTorchJob suspended")
elseif holds.Restarting ~= nil then
  hs.status = "Progressing"
  hs.message = text(holds.Restarting, "PyTorchJob restarting") .. replicas()
elseif holds.Running ~= nil then
  hs.status = "Progressing"
  hs.message = "Training" .. replicas()
elseif holds.Created ~= nil then
  hs.status = "Progressing"
  hs.message = "Created; pods starting"
end
return hs
