"""Reading and writing tomograms, labels, tilt series and angle files, faithfully and atomically."""
