// The sign-in sheet's one button (inline handlers are blocked by the page's CSP).
"use strict";
document.getElementById("print")?.addEventListener("click", () => window.print());
