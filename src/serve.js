// Keyboard first: one key per decision; every key also has a button or link.
document.addEventListener("keydown", (e) => {
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  const t = e.target;
  if (t.tagName === "INPUT" || t.tagName === "SELECT" || t.tagName === "TEXTAREA") {
    if (e.key === "Escape") t.blur();
    return; // typing: Enter submits the field's own form
  }
  const click = (id) => {
    const el = document.getElementById(id);
    if (el) { e.preventDefault(); el.click(); }
  };
  if (e.key === "1" || e.key === "2" || e.key === "3") click("accept-" + e.key);
  else if (e.key === "c") {
    const first = document.querySelector("#decide input[name^=f_]");
    if (first) { e.preventDefault(); first.focus(); first.select(); }
  } else if (e.key === "x") {
    const r = document.getElementById("reject-reason");
    if (r) { e.preventDefault(); r.focus(); }
  } else if (e.key === "Enter" || e.key === "o") click("first");
  else if (e.key === "n") click("next");
  else if (e.key === "l") click("list");
});
