// The monitoring big screen: state pushed over /ws/bigscreen/ (never polled).
(function () {
  var t = JSON.parse(document.getElementById("screen-labels").textContent);
  var states = ["charging", "idle", "plugged", "finishing", "reserved", "fault", "offline"];
  var colours = {charging: "#40c057", idle: "#339af0", plugged: "#22b8cf", finishing: "#fab005",
                 reserved: "#be4bdb", fault: "#fa5252", offline: "#868e96"};
  var text = {color: "#d6e4ff"};
  var map = echarts.init(document.getElementById("map"));
  var donut = echarts.init(document.getElementById("donut"));
  var curve = echarts.init(document.getElementById("curve"));
  var shown = {};

  // Counters tick from the value shown to the new one.
  function tick(id, to, places) {
    var el = document.getElementById(id), from = shown[id] || 0, start = performance.now();
    shown[id] = to;
    el.dataset.value = to;
    function step(now) {
      var k = Math.min(1, (now - start) / 800);
      el.textContent = (from + (to - from) * k).toLocaleString("zh-CN", {minimumFractionDigits: places, maximumFractionDigits: places});
      if (k < 1) requestAnimationFrame(step);
    }
    requestAnimationFrame(step);
  }

  function render(s) {
    tick("power", s.power_kw, 1); tick("energy", s.energy_kwh, 1); tick("revenue", s.total_yuan, 2);
    tick("orders", s.orders, 0);
    var online = document.getElementById("online");
    online.textContent = s.piles_online + " / " + s.piles;
    online.dataset.value = s.piles_online;
    document.getElementById("clock").textContent = s.today + " " + s.at;
    map.setOption({
      title: {text: t.map, textStyle: text, left: 12, top: 8},
      legend: {textStyle: text, right: 12, top: 8},
      tooltip: {formatter: function (p) { return p.data.name + " " + p.data.charging + "/" + p.data.total; }},
      xAxis: {type: "value", scale: true, show: false}, yAxis: {type: "value", scale: true, show: false},
      grid: {left: 40, right: 40, top: 60, bottom: 40},
      series: ["charging", "idle", "fault", "offline"].map(function (st) {
        return {name: t[st], type: "effectScatter", showEffectOn: st === "charging" ? "render" : "emphasis",
          symbolSize: 18, itemStyle: {color: colours[st]},
          label: {show: true, position: "right", color: "#d6e4ff", fontSize: 16, formatter: "{b}"},
          data: s.stations.filter(function (x) { return x.state === st; }).map(function (x) {
            return {name: x.name, value: [x.lng, x.lat], charging: x.charging, total: x.total}; })};
      })
    });
    donut.setOption({
      title: {text: t.donut, textStyle: text, left: 12, top: 8},
      tooltip: {trigger: "item"},
      legend: {bottom: 6, textStyle: text},
      series: [{type: "pie", radius: ["40%", "62%"], center: ["50%", "50%"], label: {color: "#d6e4ff", formatter: "{b} {c}"},
        data: states.filter(function (st) { return s.statuses[st]; }).map(function (st) {
          return {name: t[st], value: s.statuses[st], itemStyle: {color: colours[st]}}; })}]
    });
    curve.setOption({
      title: {text: t.curve, textStyle: text, left: 12, top: 8},
      tooltip: {trigger: "axis"}, grid: {left: 60, right: 30, top: 60, bottom: 40},
      xAxis: {type: "category", data: s.curve.map(function (h) { return h.hour; }), axisLabel: text},
      yAxis: {type: "value", axisLabel: text, splitLine: {lineStyle: {color: "#1e3a6e"}}},
      series: [{type: "line", smooth: true, areaStyle: {opacity: 0.3}, itemStyle: {color: "#7fd4ff"},
        data: s.curve.map(function (h) { return h.power_kw; })}]
    });
    document.getElementById("top").innerHTML = s.top.map(function (x) {
      return "<li>" + esc(x.name) + "<span>¥" + x.total_yuan.toFixed(2) + " · " + x.orders + " " + t.orders + "</span></li>"; }).join("");
    document.getElementById("alarms").innerHTML = s.alarms.length ? s.alarms.map(function (a) {
      return "<li class='" + (a.open ? "open" : "") + "'>" + esc(a.at + " " + a.station + " " + a.pile + " " + a.text) + "</li>"; }).join("")
      : "<li>" + esc(t.none) + "</li>";
    renderPower(s.power || []);
  }

  // Load management: each limited station's caps (asked / held) against its limit.
  function renderPower(plans) {
    var box = document.getElementById("power-plans");
    if (!plans.length) { box.innerHTML = "<p>" + esc(t.noplan) + "</p>"; return; }
    box.innerHTML = plans.map(function (p) {
      var pct = p.limit_kw ? Math.min(100, 100 * p.total_kw / p.limit_kw) : 0;
      var rows = p.piles.map(function (r) {
        var why = r.priority.map(function (x) { return t[x] || x; }).join("、");
        return "<tr class='" + (r.ok ? "" : "bad") + "'><td>" + esc(r.pile) + "</td><td class='kw'>" +
          (r.held_kw === null ? "—" : r.held_kw.toFixed(1)) + " kW</td><td>×" + r.weight +
          (why ? " " + esc(why) : "") + "</td></tr>"; }).join("");
      return "<div class='station' data-station='" + esc(p.station) + "'><h3>" + esc(p.station) + " · " +
        esc(t[p.sharing] || p.sharing) + " " + esc(p.at) + "</h3><span class='sum' data-total='" + p.total_kw +
        "' data-limit='" + p.limit_kw + "'>" + p.total_kw.toFixed(1) + " / " + p.limit_kw.toFixed(0) + " kW</span>" +
        "<div class='bar'><i style='width:" + pct.toFixed(1) + "%'></i></div>" +
        (rows ? "<table>" + rows + "</table>" : "<p>" + esc(t.nosession) + "</p>") +
        (p.unserved.length ? "<p class='waiting'>" + esc(t.waiting) + " " + esc(p.unserved.join("、")) + "</p>" : "") +
        "</div>"; }).join("");
  }

  function esc(v) { var d = document.createElement("div"); d.textContent = v; return d.innerHTML; }

  function connect() {
    var ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/bigscreen/");
    var state = document.getElementById("link-state");
    ws.onopen = function () { state.className = ""; state.textContent = t.live; };
    ws.onmessage = function (e) { render(JSON.parse(e.data)); };
    ws.onclose = function () { state.className = "down"; state.textContent = t.down; setTimeout(connect, 3000); };
  }
  connect();
})();
