#include "plot.h"

#include <algorithm>
#include <cmath>

#ifdef RTNQ_HAVE_CAIRO
#include <cairo.h>
#endif

namespace rtnq::cli {
namespace {

constexpr int kHeaderHeight = 92;    // title + two subtitle lines
constexpr int kMinWidth = 1100;      // room for the title and legend over a single panel
constexpr int kLegendRowHeight = 24;
constexpr int kLegendEntryWidth = 190;

int GridColumns(size_t panels) {
  return std::max(1, static_cast<int>(std::ceil(std::sqrt(static_cast<double>(panels)))));
}

std::vector<std::string> LegendLabels(const PlotSpec& spec) {
  std::vector<std::string> labels;
  for (const auto& p : spec.panels) {
    for (const auto& s : p.series) {
      if (std::find(labels.begin(), labels.end(), s.label) == labels.end()) labels.push_back(s.label);
    }
  }
  return labels;
}

int LegendRows(const PlotSpec& spec, int width) {
  const int per_row = std::max(1, (width - 40) / kLegendEntryWidth);
  const int n = static_cast<int>(LegendLabels(spec).size());
  return (n + per_row - 1) / per_row;
}

}  // namespace

std::pair<int, int> PlotImageSize(const PlotSpec& spec) {
  const int cols = GridColumns(spec.panels.size());
  const int rows = spec.panels.empty() ? 0 : (static_cast<int>(spec.panels.size()) + cols - 1) / cols;
  const int width = std::max(cols * spec.panel_width, kMinWidth);
  const int height = kHeaderHeight + LegendRows(spec, width) * kLegendRowHeight + 10 + rows * spec.panel_height;
  return {width, height};
}

#ifdef RTNQ_HAVE_CAIRO
namespace {

struct Rgb {
  double r, g, b;
};

// Tableau-10: distinguishable, print-friendly.
constexpr Rgb kPalette[] = {{0.12, 0.47, 0.71}, {1.00, 0.50, 0.05}, {0.17, 0.63, 0.17},
                            {0.84, 0.15, 0.16}, {0.58, 0.40, 0.74}, {0.55, 0.34, 0.29},
                            {0.89, 0.47, 0.76}, {0.50, 0.50, 0.50}, {0.74, 0.74, 0.13},
                            {0.09, 0.75, 0.81}};

// A step of 1, 2 or 5 x 10^e giving about `target` intervals over `range`.
double NiceStep(double range, int target) {
  const double raw = range / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (raw <= m * mag) return m * mag;
  }
  return 10 * mag;
}

std::string TickLabel(double v) {
  char buf[32];
  if (std::fabs(v - std::round(v)) < 1e-9) {
    std::snprintf(buf, sizeof(buf), "%.0f", v);
  } else {
    std::snprintf(buf, sizeof(buf), "%g", v);
  }
  return buf;
}

void Text(cairo_t* cr, const std::string& s, double x, double y, double size, double align_x,
          bool bold = false) {
  cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL,
                         bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, size);
  cairo_text_extents_t e;
  cairo_text_extents(cr, s.c_str(), &e);
  cairo_move_to(cr, x - align_x * e.x_advance, y);
  cairo_show_text(cr, s.c_str());
}

void Marker(cairo_t* cr, double x, double y, int shape) {
  constexpr double r = 4;
  switch (shape % 3) {
    case 0: cairo_arc(cr, x, y, r, 0, 2 * M_PI); break;
    case 1: cairo_rectangle(cr, x - r, y - r, 2 * r, 2 * r); break;
    default:
      cairo_move_to(cr, x, y - r - 1);
      cairo_line_to(cr, x + r + 1, y + r);
      cairo_line_to(cr, x - r - 1, y + r);
      cairo_close_path(cr);
  }
  cairo_fill(cr);
}

void SeriesStyle(cairo_t* cr, size_t index, bool dashed) {
  const Rgb c = kPalette[index % std::size(kPalette)];
  cairo_set_source_rgb(cr, c.r, c.g, c.b);
  cairo_set_line_width(cr, 2);
  const double dash[] = {7, 4};
  cairo_set_dash(cr, dash, dashed ? 2 : 0, 0);
}

void DrawPanel(cairo_t* cr, const PlotSpec& spec, const PlotPanel& panel,
               const std::vector<std::string>& labels, double x0, double y0, double panel_width) {
  const double left = x0 + 62, right = x0 + panel_width - 18;
  const double top = y0 + 34, bottom = y0 + spec.panel_height - 50;
  auto fx = [&](double x) { return spec.log2_x ? std::log2(std::max(x, 1e-300)) : x; };
  double xmin = INFINITY, xmax = -INFINITY, ymax = spec.reference_y > 0 ? spec.reference_y : 0;
  for (const auto& s : panel.series) {
    for (auto [x, y] : s.points) {
      xmin = std::min(xmin, fx(x));
      xmax = std::max(xmax, fx(x));
      if (std::isfinite(y)) ymax = std::max(ymax, y);
    }
  }
  if (!std::isfinite(xmin)) xmin = 0, xmax = 1;
  if (xmax <= xmin) xmin -= 0.5, xmax += 0.5;
  if (ymax <= 0) ymax = 1;
  const double ystep = NiceStep(ymax * 1.08, 5);
  const double ytop = std::ceil(ymax * 1.08 / ystep) * ystep;
  const double pad = (xmax - xmin) * 0.04;
  auto px = [&](double x) { return left + (fx(x) - xmin + pad) / (xmax - xmin + 2 * pad) * (right - left); };
  auto py = [&](double y) { return bottom - y / ytop * (bottom - top); };

  cairo_set_dash(cr, nullptr, 0, 0);
  cairo_set_source_rgb(cr, 0, 0, 0);
  Text(cr, panel.title, (left + right) / 2, y0 + 22, 15, 0.5, true);
  // Grid and ticks.
  cairo_set_line_width(cr, 1);
  for (double y = 0; y <= ytop + ystep * 1e-6; y += ystep) {
    cairo_set_source_rgb(cr, 0.88, 0.88, 0.88);
    cairo_move_to(cr, left, py(y));
    cairo_line_to(cr, right, py(y));
    cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    Text(cr, TickLabel(y), left - 6, py(y) + 4, 11, 1.0);
  }
  std::vector<double> xticks;
  if (spec.log2_x) {
    for (double e = std::ceil(xmin); e <= xmax + 1e-9; e += 1) xticks.push_back(std::exp2(e));
  } else {
    const double step = NiceStep(xmax - xmin, 6);
    for (double x = std::ceil(xmin / step) * step; x <= xmax + 1e-9; x += step) xticks.push_back(x);
  }
  for (double x : xticks) {
    cairo_set_source_rgb(cr, 0.88, 0.88, 0.88);
    cairo_move_to(cr, px(x), top);
    cairo_line_to(cr, px(x), bottom);
    cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    Text(cr, TickLabel(x), px(x), bottom + 16, 11, 0.5);
  }
  cairo_set_source_rgb(cr, 0, 0, 0);
  cairo_rectangle(cr, left, top, right - left, bottom - top);
  cairo_stroke(cr);
  Text(cr, spec.x_label, (left + right) / 2, bottom + 36, 12, 0.5);
  cairo_save(cr);
  cairo_translate(cr, x0 + 16, (top + bottom) / 2);
  cairo_rotate(cr, -M_PI / 2);
  Text(cr, spec.y_label, 0, 0, 12, 0.5);
  cairo_restore(cr);
  if (spec.reference_y > 0) {
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    cairo_set_line_width(cr, 1.2);
    const double dash[] = {2, 3};
    cairo_set_dash(cr, dash, 2, 0);
    cairo_move_to(cr, left, py(spec.reference_y));
    cairo_line_to(cr, right, py(spec.reference_y));
    cairo_stroke(cr);
  }
  // Series.
  for (const auto& s : panel.series) {
    const size_t index = std::find(labels.begin(), labels.end(), s.label) - labels.begin();
    SeriesStyle(cr, index, s.dashed);
    bool started = false;
    for (auto [x, y] : s.points) {
      if (!std::isfinite(y)) continue;
      if (started) cairo_line_to(cr, px(x), py(y));
      else cairo_move_to(cr, px(x), py(y));
      started = true;
    }
    cairo_stroke(cr);
    for (auto [x, y] : s.points) {
      if (std::isfinite(y)) Marker(cr, px(x), py(y), static_cast<int>(index));
    }
  }
  cairo_set_dash(cr, nullptr, 0, 0);
}

}  // namespace

Status WritePlotPng(const PlotSpec& spec, const std::string& path) {
  const auto [width, height] = PlotImageSize(spec);
  cairo_surface_t* surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height);
  cairo_t* cr = cairo_create(surface);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  cairo_set_source_rgb(cr, 0, 0, 0);
  Text(cr, spec.title, width / 2.0, 28, 19, 0.5, true);
  cairo_set_source_rgb(cr, 0.25, 0.25, 0.25);
  // The subtitle: one line per '\n'.
  for (size_t start = 0, line = 0; start <= spec.subtitle.size(); ++line) {
    size_t end = spec.subtitle.find('\n', start);
    if (end == std::string::npos) end = spec.subtitle.size();
    Text(cr, spec.subtitle.substr(start, end - start), width / 2.0, 52 + 18 * static_cast<double>(line), 13, 0.5);
    start = end + 1;
  }

  // The legend: one entry per label, in rows across the whole width.
  const std::vector<std::string> labels = LegendLabels(spec);
  std::vector<bool> dashed(labels.size(), false);
  for (const auto& p : spec.panels) {
    for (const auto& s : p.series) {
      dashed[std::find(labels.begin(), labels.end(), s.label) - labels.begin()] = s.dashed;
    }
  }
  const int per_row = std::max(1, (width - 40) / kLegendEntryWidth);
  const int legend_rows = LegendRows(spec, width);
  const int in_last = labels.size() % per_row == 0 ? per_row : static_cast<int>(labels.size() % per_row);
  for (size_t i = 0; i < labels.size(); ++i) {
    const int row = static_cast<int>(i) / per_row, col = static_cast<int>(i) % per_row;
    const int entries = row + 1 == legend_rows ? in_last : per_row;
    const double x = (width - entries * kLegendEntryWidth) / 2.0 + col * kLegendEntryWidth;
    const double y = kHeaderHeight + row * kLegendRowHeight + 8;
    SeriesStyle(cr, i, dashed[i]);
    cairo_move_to(cr, x, y);
    cairo_line_to(cr, x + 34, y);
    cairo_stroke(cr);
    Marker(cr, x + 17, y, static_cast<int>(i));
    cairo_set_source_rgb(cr, 0, 0, 0);
    Text(cr, labels[i], x + 42, y + 5, 13, 0);
  }

  const int cols = GridColumns(spec.panels.size());
  const double panel_width = static_cast<double>(width) / cols;
  const double grid_top = kHeaderHeight + legend_rows * kLegendRowHeight + 10;
  for (size_t i = 0; i < spec.panels.size(); ++i) {
    const double x0 = static_cast<double>(i % cols) * panel_width;
    const double y0 = grid_top + static_cast<double>(i / cols) * spec.panel_height;
    DrawPanel(cr, spec, spec.panels[i], labels, x0, y0, panel_width);
  }
  cairo_destroy(cr);
  const cairo_status_t st = cairo_surface_write_to_png(surface, path.c_str());
  cairo_surface_destroy(surface);
  if (st != CAIRO_STATUS_SUCCESS) {
    return Err("{}: cannot write the PNG: {}", path, cairo_status_to_string(st));
  }
  return Status();
}

#else

Status WritePlotPng(const PlotSpec&, const std::string& path) {
  return Err("{}: rtnq was built without cairo, so it cannot draw plots (install libcairo2-dev "
             "and reconfigure)",
             path);
}

#endif

}  // namespace rtnq::cli
