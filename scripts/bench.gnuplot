# Time against size for both engines, from bench.sh's bench.dat (columns: MiB, memcpy s,
# ours dump, CRIU dump, ours restore, CRIU restore). Run as
#   gnuplot -e "data='bench.dat'; out='bench.svg'" bench.gnuplot
# Log-log axes: a line of slope one is time growing in proportion to size.
set terminal svg size 900,560 dynamic enhanced font "sans,12" background "white"
set output out
set title "ocicheckpoint and CRIU 4.2: dump and restore time against memory size"
set xlabel "process memory (MiB)"
set ylabel "seconds"
set logscale xy 2
set format y "%.3g"
set grid
set key top left
set datafile missing "-"
plot data using 1:3 with linespoints lw 2 pt 7 lc rgb "#1f77b4" title "ocicheckpoint dump", \
     data using 1:4 with linespoints lw 2 pt 5 lc rgb "#d62728" title "CRIU dump", \
     data using 1:5 with linespoints lw 2 pt 7 dt 2 lc rgb "#1f77b4" title "ocicheckpoint restore", \
     data using 1:6 with linespoints lw 2 pt 5 dt 2 lc rgb "#d62728" title "CRIU restore", \
     data using 1:2 with lines lw 1 lc rgb "#555555" title "memcpy of the same bytes"
