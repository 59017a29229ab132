"""explorer.html: the data it embeds, its thumbnails and the page."""
