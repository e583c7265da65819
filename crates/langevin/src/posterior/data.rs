//! Tabular data for posteriors: feature columns and a label column from a CSV file.

use crate::error::{Error, Result};
use crate::io::Table;
use std::path::Path;

/// Features (n × p, row-major) and labels of a data set.
#[derive(Clone, Debug)]
pub struct Dataset {
    x: Vec<f64>,
    p: usize,
    /// Labels, one per row.
    pub y: Vec<f64>,
    /// Names of the feature columns.
    pub feature_names: Vec<String>,
    /// Name of the label column.
    pub label: String,
    /// Mean and standard deviation of each feature when the features were standardized.
    pub standardization: Option<(Vec<f64>, Vec<f64>)>,
    /// Rows dropped because they held NaN or ±inf (with `drop_nonfinite`).
    pub dropped: usize,
}

impl Dataset {
    /// Features and labels from explicit arrays (row-major `x`, `p` features).
    pub fn new(x: Vec<f64>, p: usize, y: Vec<f64>, feature_names: Vec<String>, label: String) -> Result<Self> {
        if p == 0 || x.len() != p * y.len() || feature_names.len() != p {
            return Err(Error::msg(format!(
                "a data set needs p ≥ 1 features per row: got {} values for {} rows and {} names",
                x.len(),
                y.len(),
                feature_names.len()
            )));
        }
        if y.is_empty() {
            return Err(Error::msg("the data set has no rows"));
        }
        Ok(Dataset { x, p, y, feature_names, label, standardization: None, dropped: 0 })
    }

    /// Select the `label` column and the `features` (all other columns when `None`) of a CSV
    /// table. NaN or ±inf cells are an error naming the row and column, or, with
    /// `drop_nonfinite`, their rows are dropped.
    pub fn from_table(
        table: &Table,
        path: &Path,
        label: &str,
        features: Option<&[String]>,
        drop_nonfinite: bool,
    ) -> Result<Self> {
        let header = table.header.as_ref().ok_or_else(|| {
            Error::file(path, "the first row must name the columns (a header such as income,age,default)")
        })?;
        let find = |name: &str| {
            header.iter().position(|h| h == name).ok_or_else(|| {
                Error::file(path, format!("no column named '{name}'; the columns are: {}", header.join(", ")))
            })
        };
        // A name that two columns share is ambiguous: the wrong one would be used in silence.
        for (c, h) in header.iter().enumerate() {
            if header[..c].contains(h) {
                return Err(Error::file(
                    path,
                    format!(
                        "two columns are named '{h}' (columns {} and {}); give every column its own name",
                        header.iter().position(|x| x == h).unwrap_or(0) + 1,
                        c + 1
                    ),
                ));
            }
        }
        if let Some(f) = features
            && let Some((i, n)) = f.iter().enumerate().find(|(i, n)| f[..*i].contains(n))
        {
            return Err(Error::invalid(
                "features",
                format!(
                    "feature '{n}' is listed twice (at positions {} and {}); list each column once",
                    f.iter().position(|x| x == n).unwrap_or(0) + 1,
                    i + 1
                ),
            ));
        }
        let yc = find(label)?;
        let fcols: Vec<usize> = match features {
            Some(f) => f.iter().map(|n| find(n)).collect::<Result<_>>()?,
            None => (0..header.len()).filter(|&c| c != yc).collect(),
        };
        if fcols.is_empty() {
            return Err(Error::file(path, format!("no feature columns besides the label '{label}'")));
        }
        if fcols.contains(&yc) {
            return Err(Error::file(path, format!("the label '{label}' cannot also be a feature")));
        }
        let mut x = Vec::with_capacity(table.data.nrows() * fcols.len());
        let mut y = Vec::with_capacity(table.data.nrows());
        let mut dropped = 0;
        for (i, row) in table.data.outer_iter().enumerate() {
            let bad = std::iter::once(yc).chain(fcols.iter().copied()).find(|&c| !row[c].is_finite());
            if let Some(c) = bad {
                if drop_nonfinite {
                    dropped += 1;
                    continue;
                }
                return Err(Error::file(
                    path,
                    format!(
                        "data row {} (line {}), column '{}' is {}; clean the data or pass `drop_nonfinite` to skip such rows",
                        i + 1,
                        i + 2,
                        header[c],
                        row[c]
                    ),
                ));
            }
            x.extend(fcols.iter().map(|&c| row[c]));
            y.push(row[yc]);
        }
        if y.is_empty() {
            return Err(Error::file(path, "no rows left after dropping the ones with NaN or inf"));
        }
        let names = fcols.iter().map(|&c| header[c].clone()).collect();
        let mut d = Dataset::new(x, fcols.len(), y, names, label.to_string())?;
        d.dropped = dropped;
        Ok(d)
    }

    /// Standardize every feature to mean 0 and standard deviation 1 (coefficients are then per
    /// standard deviation of their feature). A constant feature is an error.
    pub fn standardize(&mut self) -> Result<()> {
        let n = self.rows() as f64;
        let mut mean = vec![0.0; self.p];
        let mut sd = vec![0.0; self.p];
        for j in 0..self.p {
            mean[j] = (0..self.rows()).map(|i| self.x[i * self.p + j]).sum::<f64>() / n;
            sd[j] = ((0..self.rows()).map(|i| (self.x[i * self.p + j] - mean[j]).powi(2)).sum::<f64>() / n).sqrt();
            if sd[j] == 0.0 {
                return Err(Error::msg(format!(
                    "feature '{}' is constant, so it cannot be standardized (and carries no information); drop it with `features`",
                    self.feature_names[j]
                )));
            }
        }
        for i in 0..self.rows() {
            for j in 0..self.p {
                self.x[i * self.p + j] = (self.x[i * self.p + j] - mean[j]) / sd[j];
            }
        }
        self.standardization = Some((mean, sd));
        Ok(())
    }

    /// Number of rows N.
    pub fn rows(&self) -> usize {
        self.y.len()
    }

    /// Number of features p.
    pub fn features(&self) -> usize {
        self.p
    }

    /// Features of row `i`.
    #[inline]
    pub fn row(&self, i: usize) -> &[f64] {
        &self.x[i * self.p..(i + 1) * self.p]
    }
}
