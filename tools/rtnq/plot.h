// Line charts as PNG (cairo): a grid of panels sharing one legend, for `rtnq bench gemm --plot`.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "base/status.h"

namespace rtnq::cli {

struct PlotSeries {
  std::string label;  // series with the same label share a colour and a legend entry
  bool dashed = false;
  std::vector<std::pair<double, double>> points;  // (x, y), drawn in order
};

struct PlotPanel {
  std::string title;
  std::vector<PlotSeries> series;
};

struct PlotSpec {
  std::string title;
  std::string subtitle;  // may hold several lines separated by '\n'
  std::string x_label, y_label;
  bool log2_x = false;         // x axis in powers of two, ticks at each power
  double reference_y = -1;     // a horizontal reference line (e.g. 1.0 = parity); < 0: none
  std::vector<PlotPanel> panels;
  int panel_width = 560, panel_height = 400;
};

// Width and height in pixels of the image WritePlotPng draws for `spec`.
std::pair<int, int> PlotImageSize(const PlotSpec& spec);

// Draws the panels in a grid (about square) under a title and a shared legend, and writes a
// PNG to `path`. Fails when rtnq was built without cairo or the file cannot be written.
Status WritePlotPng(const PlotSpec& spec, const std::string& path);

}  // namespace rtnq::cli
