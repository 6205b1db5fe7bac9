package io.jgears.bench;

import javax.imageio.ImageIO;
import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/** A horizontal bar chart of the comparisons' ratios with their targets, drawn with Java2D (headless). */
final class Chart {
    private Chart() {
    }

    static void write(Path png, List<ComparisonBench.Result> results) throws IOException {
        int rowHeight = 44;
        int left = 430;
        int width = 1100;
        int height = 80 + rowHeight * results.size();
        BufferedImage img = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
        g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
        g.setColor(Color.WHITE);
        g.fillRect(0, 0, width, height);
        g.setColor(Color.BLACK);
        g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 16));
        g.drawString("jgears / baseline (higher is better; log scale; black tick = target)", 20, 28);
        // Log scale from 0.001x to 100x.
        double lo = Math.log10(0.001);
        double hi = Math.log10(100);
        int plot = width - left - 40;
        g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
        for (double tick : new double[]{0.001, 0.01, 0.1, 1, 10, 100}) {
            int x = left + (int) ((Math.log10(tick) - lo) / (hi - lo) * plot);
            g.setColor(tick == 1 ? Color.DARK_GRAY : new Color(220, 220, 220));
            g.drawLine(x, 45, x, height - 20);
            g.setColor(Color.GRAY);
            g.drawString(tick >= 1 ? String.format(Locale.ROOT, "%.0fx", tick) : String.format(Locale.ROOT, "%sx", tick), x - 12, height - 6);
        }
        int y = 55;
        for (ComparisonBench.Result r : results) {
            double ratio = Math.max(0.001, Math.min(100, r.ratio()));
            int x0 = left + (int) ((0 - lo) / (hi - lo) * plot);
            int x1 = left + (int) ((Math.log10(ratio) - lo) / (hi - lo) * plot);
            g.setColor(r.ratio() >= r.target() ? new Color(60, 150, 90) : new Color(200, 80, 60));
            g.fillRect(Math.min(x0, x1), y, Math.max(2, Math.abs(x1 - x0)), rowHeight - 16);
            int xt = left + (int) ((Math.log10(r.target()) - lo) / (hi - lo) * plot);
            g.setColor(Color.BLACK);
            g.setStroke(new BasicStroke(3));
            g.drawLine(xt, y - 4, xt, y + rowHeight - 12);
            g.setStroke(new BasicStroke(1));
            g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 13));
            g.drawString(r.name(), 20, y + 18);
            g.drawString(String.format(Locale.ROOT, "%.2fx", r.ratio()), Math.max(x0, x1) + 6, y + 18);
            y += rowHeight;
        }
        g.dispose();
        Files.createDirectories(png.toAbsolutePath().getParent());
        ImageIO.write(img, "png", png.toFile());
    }
}
