// The operator's home charts (Apache ECharts, served from our static files).
(function () {
  var data = JSON.parse(document.getElementById("stats-home-data").textContent);
  var t = JSON.parse(document.getElementById("stats-labels").textContent);
  var colours = {charging: "#2f9e44", idle: "#1c7ed6", fault: "#e03131", offline: "#868e96"};
  var trend = echarts.init(document.getElementById("chart-trend"));
  trend.setOption({
    title: {text: t.trend, textStyle: {fontSize: 14}}, tooltip: {trigger: "axis"},
    legend: {data: [t.energy, t.revenue], right: 10, top: 4},
    grid: {left: 60, right: 60, top: 60, bottom: 30},
    xAxis: {type: "category", data: data.trend.map(function (d) { return d.day; })},
    yAxis: [{type: "value", name: "kWh"}, {type: "value", name: "¥"}],
    series: [
      {name: t.energy, type: "bar", data: data.trend.map(function (d) { return d.energy_kwh; })},
      {name: t.revenue, type: "line", yAxisIndex: 1, data: data.trend.map(function (d) { return d.total_yuan; })}
    ]
  });
  var periods = echarts.init(document.getElementById("chart-periods"));
  periods.setOption({
    title: {text: t.periods, textStyle: {fontSize: 14}}, tooltip: {trigger: "item", formatter: "{b}: ¥{c} ({d}%)"},
    legend: {bottom: 4},
    series: [{type: "pie", radius: ["35%", "62%"], top: 10, bottom: 30, label: {formatter: "{b} ¥{c}"},
      data: ["sharp", "peak", "flat", "valley"].map(function (p) { return {name: t[p], value: data.periods[p].revenue_yuan}; })
        .filter(function (d) { return d.value > 0; })}]
  });
  var map = echarts.init(document.getElementById("chart-map"));
  // Stations on their GCJ-02 coordinates (no map tiles: works offline, nothing from a CDN).
  map.setOption({
    title: {text: t.map, textStyle: {fontSize: 14}},
    tooltip: {formatter: function (p) { return p.data.name + " " + p.data.charging + "/" + p.data.total; }},
    legend: {right: 10, data: ["charging", "idle", "fault", "offline"].map(function (s) { return t[s]; })},
    xAxis: {type: "value", scale: true, show: false}, yAxis: {type: "value", scale: true, show: false},
    series: ["charging", "idle", "fault", "offline"].map(function (s) {
      return {name: t[s], type: "scatter", symbolSize: 14, itemStyle: {color: colours[s]},
        label: {show: true, position: "right", formatter: "{b}"},
        data: data.stations.filter(function (x) { return x.state === s; }).map(function (x) {
          return {name: x.name, value: [x.lng, x.lat], charging: x.charging, total: x.total}; })};
    })
  });
  window.addEventListener("resize", function () { trend.resize(); periods.resize(); map.resize(); });
})();
