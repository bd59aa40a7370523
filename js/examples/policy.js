// The policy the examples share: the model may search the web and read the
// wiki (with the user's approval), must never run shell commands, and needs
// a person's confirmation for anything of risk 4 or more.
export const policy = {
  name: "Agent tools",
  version: "1.0",
  mode: "strict",
  terms: [
    { id: "actor:model", type: "actor", name: "model" },
    { id: "action:read", type: "action", name: "read" },
    { id: "action:execute", type: "action", name: "execute" },
    { id: "data:public", type: "data_class", name: "public" },
    { id: "data:internal", type: "data_class", name: "internal" },
    { id: "tool:web_search", type: "tool", name: "web_search", action: "action:read", data_classes: ["data:public"] },
    { id: "tool:read_wiki", type: "tool", name: "read_wiki", action: "action:read", data_classes: ["data:internal"] },
    { id: "tool:shell", type: "tool", name: "shell", action: "action:execute", data_classes: [] },
  ],
  relations: [
    { type: "permits", subject: "actor:model", action: "action:read", object: "data:public" },
    { type: "permits", subject: "actor:model", action: "action:read", object: "data:internal", conditions: ["user_approved"] },
    { type: "forbids", subject: "actor:model", action: "action:execute", object: "*" },
  ],
  constraints: [
    { name: "high_risk_requires_approval", condition: "risk_level >= 4", action: "require_human_confirmation" },
  ],
};
