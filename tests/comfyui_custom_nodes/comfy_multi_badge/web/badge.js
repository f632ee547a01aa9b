// Test extension: proves a custom node's front-end code runs in the page.
import { app } from "../../scripts/app.js";

const COLOR = "#7a2e8e";

app.registerExtension({
  name: "comfy_multi.test.badge",
  async setup() {
    const badge = document.createElement("div");
    badge.id = "cm-test-badge";
    badge.textContent = "badge extension loaded";
    badge.style.cssText = "position:fixed;right:8px;top:48px;z-index:2000;padding:4px 8px;" +
      "background:" + COLOR + ";color:#fff;font:12px system-ui";
    document.body.append(badge);
    window.__cmBadgeLoaded = true;
  },
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.name !== "CMBadge") return;
    const created = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function () {
      const r = created?.apply(this, arguments);
      this.color = COLOR;
      this.bgcolor = COLOR;
      return r;
    };
  },
});
